"""Safe checkpoint loading for torch>=2.6 with MMEngine 0.10.7.

Since torch 2.6, ``torch.load`` defaults to ``weights_only=True``: only tensors, containers and
an allow-list of classes are unpickled. MMEngine 0.10.7 calls ``torch.load`` without the argument,
and its training checkpoints hold a few non-tensor objects (``HistoryBuffer`` in the message hub,
numpy arrays and scalars), so ``--resume`` fails out of the box.

mmkdcal keeps ``weights_only=True`` and extends torch's allow-list with exactly the classes those
checkpoints hold (:data:`ALLOWED_GLOBALS`). Anything else in a checkpoint (a custom class, a
``__reduce__`` payload) is refused with :class:`UnsafeCheckpointError`, which names the file and
the offending global. ``install()`` (run by ``import mmkdcal``) registers the allow-list and
replaces MMEngine's local-file loader with :func:`load_checkpoint_file`.
"""
import os.path as osp
import pickle
from typing import Any, List, Optional

import numpy as np
import torch
from packaging.version import Version

__all__ = ['ALLOWED_GLOBALS', 'UnsafeCheckpointError', 'allowed_globals', 'install',
           'load_checkpoint_file']


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint holds an object outside mmkdcal's allow-list; it was not unpickled."""


def _history_buffer_getattr(obj: Any, name: str) -> Any:
    """``getattr`` restricted to the statistics methods of MMEngine's ``HistoryBuffer``."""
    from mmengine.logging.history_buffer import HistoryBuffer
    allowed = {'min', 'max', 'current', 'mean'} | set(HistoryBuffer._statistics_methods)
    if obj is HistoryBuffer and isinstance(name, str) and name in allowed:
        return getattr(obj, name)
    raise UnsafeCheckpointError(
        f'checkpoint asks for getattr({obj!r}, {name!r}); only HistoryBuffer statistics are '
        'allowed.')


def allowed_globals() -> List[Any]:
    """The classes/functions that MMEngine/MMDetection checkpoints hold besides tensors.

    Returns:
        A list suitable for ``torch.serialization.add_safe_globals``.
    """
    from mmengine.logging.history_buffer import HistoryBuffer

    allowed: List[Any] = [HistoryBuffer, np.ndarray, np.dtype,
                          # HistoryBuffer pickles its statistics as getattr(HistoryBuffer, 'mean'):
                          # the GLOBAL "getattr" resolves to a getattr that allows only that.
                          (_history_buffer_getattr, 'builtins.getattr'),
                          (_history_buffer_getattr, '__builtin__.getattr')]
    # numpy array/scalar reconstruction (its module moved from numpy.core to numpy._core in 2.0)
    multiarray = getattr(np, '_core', None)
    multiarray = getattr(multiarray, 'multiarray', None) or np.core.multiarray
    allowed += [multiarray._reconstruct, multiarray.scalar]
    # the concrete dtype classes (numpy>=1.25) that pickled dtypes reference
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:
        allowed += [getattr(dtypes, name) for name in dir(dtypes) if name.endswith('DType')]
    return allowed


ALLOWED_GLOBALS: Optional[List[Any]] = None

#: ``torch.serialization.add_safe_globals`` exists from torch 2.4 on. With an older torch (only
#: the MMRazor benchmark environment, torch 1.13) ``weights_only=True`` loading still works for
#: tensors and plain containers, and anything else (MMEngine's ``HistoryBuffer`` in a training
#: checkpoint) is refused with :class:`UnsafeCheckpointError` instead of being allow-listed.
TORCH_HAS_SAFE_GLOBALS = Version(torch.__version__.split('+')[0]) >= Version('2.4.0')


def install() -> None:
    """Register :func:`allowed_globals` with torch and use :func:`load_checkpoint_file` in MMEngine.

    Idempotent. Called by ``import mmkdcal``.
    """
    global ALLOWED_GLOBALS
    if ALLOWED_GLOBALS is None:
        ALLOWED_GLOBALS = allowed_globals()
        if TORCH_HAS_SAFE_GLOBALS:
            torch.serialization.add_safe_globals(ALLOWED_GLOBALS)
    from mmengine.runner.checkpoint import CheckpointLoader
    CheckpointLoader.register_scheme(prefixes='', force=True)(load_checkpoint_file)


def load_checkpoint_file(filename: str, map_location: Any = None) -> Any:
    """Load a local checkpoint with ``weights_only=True`` and the mmkdcal allow-list.

    Args:
        filename: Path of the checkpoint file.
        map_location: As in :func:`torch.load`.

    Returns:
        The loaded checkpoint (usually a dict with ``state_dict`` and ``meta``).

    Raises:
        FileNotFoundError: ``filename`` does not exist.
        UnsafeCheckpointError: the file holds an object outside the allow-list.
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'checkpoint file {filename!r} does not exist.')
    try:
        return torch.load(filename, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        lines = [ln.strip() for ln in str(exc).splitlines()
                 if 'Unsupported' in ln or 'only HistoryBuffer' in ln]
        reason = lines[0] if lines else str(exc).splitlines()[0]
        raise UnsafeCheckpointError(
            f'Refused to load {filename!r}: it holds an object outside the allow-list of '
            f'safe types, so it was not unpickled ({reason}). '
            'Checkpoints written by MMEngine/MMDetection/mmkdcal load as they are. If you trust '
            'this file and know what the object is, register its class with '
            '`torch.serialization.add_safe_globals([TheClass])` before loading, or re-save the '
            'checkpoint with only tensors and plain containers.') from exc
