"""Record what the student's stock training code computes, without changing that code.

:class:`OutputTaps` records module outputs (forward hooks) and method calls (transparent
wrappers) while the stock ``loss()`` runs, and removes them when the ``with`` block ends (also
on errors); nothing is recomputed and no upstream loop is copied.
"""
import functools
import inspect
from collections import defaultdict
from typing import Any, Dict, List, Sequence

import torch.nn as nn

__all__ = ['OutputTaps', 'single_call']


class OutputTaps:
    """Context manager that records module outputs and method calls under string keys.

    Example::

        with OutputTaps() as taps:
            taps.module_output('neck', model.neck)
            losses = model.loss(inputs, samples)
        feats = taps['neck'][0]               # the neck's output of the first call
    """

    def __init__(self) -> None:
        self.records: Dict[str, List[Any]] = defaultdict(list)
        self._handles: List[Any] = []
        self._wrapped: List[Any] = []

    def module_output(self, key: str, module: nn.Module) -> None:
        """Record ``module``'s output under ``key`` each time it is called."""
        def hook(_module, _args, output):
            self.records[key].append(output)

        self._handles.append(module.register_forward_hook(hook))

    def method_call(self, key: str, obj: Any, name: str) -> None:
        """Record each ``obj.name(...)`` call under ``key``: a dict of the bound arguments plus
        ``'result'`` (an instance attribute shadows the method until the block ends)."""
        if name in vars(obj):
            raise RuntimeError(f'{type(obj).__name__}.{name} is already wrapped.')
        original = getattr(obj, name)
        signature = inspect.signature(original)

        @functools.wraps(original)
        def wrapper(*args, **kwargs):
            result = original(*args, **kwargs)
            bound = signature.bind(*args, **kwargs)
            self.records[key].append(dict(bound.arguments, result=result))
            return result

        setattr(obj, name, wrapper)
        self._wrapped.append((obj, name))

    def __getitem__(self, key: str) -> List[Any]:
        return self.records.get(key, [])

    def __enter__(self) -> 'OutputTaps':
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        for obj, name in self._wrapped:
            obj.__dict__.pop(name, None)
        self._handles.clear()
        self._wrapped.clear()


def single_call(records: Sequence[Any], what: str) -> Any:
    """The one record under a key (``taps['neck']``) of a module or method the stock training
    code calls exactly once; RuntimeError naming ``what`` otherwise."""
    if len(records) != 1:
        raise RuntimeError(f'The {what} ran {len(records)} times in one training step; '
                           'expected once. This detector is not supported by this distiller.')
    return records[0]
