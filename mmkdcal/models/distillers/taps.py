"""Record what the student's stock training code computes, without changing that code.

A distiller runs MMDetection's own ``loss()`` of the student and needs some of its intermediate
results: the neck features, the raw head outputs, the RoIs the sampler chose and their assigned
labels. :class:`OutputTaps` records them while the stock code runs, through forward hooks on
modules and transparent wrappers around a few methods, and removes every hook and wrapper when
the ``with`` block ends (also on errors). Nothing is recomputed and no upstream loop is copied,
so mask branches, cascade stages, given proposals and upstream fixes work unchanged.
:func:`single_call` reads the one record of a module that the stock code calls exactly once.
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
            taps.method_call('roi', model.roi_head.bbox_head, 'loss_and_target')
            losses = model.loss(inputs, samples)
        feats = taps['neck'][0]               # the neck's output of the first call
        call = taps['roi'][0]                 # dict of the bound arguments + 'result'
    """

    def __init__(self) -> None:
        self.records: Dict[str, List[Any]] = defaultdict(list)
        self._handles: List[Any] = []
        self._wrapped: List[Any] = []

    def module_output(self, key: str, module: nn.Module) -> None:
        """Record ``module``'s output each time it is called.

        Args:
            key: Where the outputs are recorded.
            module: The module to observe.
        """
        def hook(_module, _args, output):
            self.records[key].append(output)

        self._handles.append(module.register_forward_hook(hook))

    def method_call(self, key: str, obj: Any, name: str) -> None:
        """Record the arguments (by parameter name) and the result of ``obj.name(...)`` calls.

        The wrapper is an instance attribute that shadows the class method until the block
        ends; it calls the original with the very same arguments and returns its result.

        Args:
            key: Where the calls are recorded: dicts of the bound arguments plus ``'result'``.
            obj: The object whose method is observed (e.g. a head module).
            name: The method name (e.g. ``'loss_and_target'``).
        """
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
    """The one record of a module or method that the stock training code calls exactly once.

    Args:
        records: What :class:`OutputTaps` recorded under one key (``taps['neck']``).
        what: The module or method, for the message (``'bbox_head'``, ``'teacher
            forward_decoder'``).

    Returns:
        The single record.

    Raises:
        RuntimeError: It ran zero times or more than once in the step, so the distiller cannot
            tell which output to distil.
    """
    if len(records) != 1:
        raise RuntimeError(f'The {what} ran {len(records)} times in one training step; '
                           'expected once. This detector is not supported by this distiller.')
    return records[0]
