"""Safe checkpoint loading: ``weights_only=True`` with an allow-list (docs/usage.md).

MMEngine's training checkpoints hold a few non-tensor objects (``HistoryBuffer``, numpy arrays
and scalars): exactly those are allow-listed, anything else is refused
(:class:`UnsafeCheckpointError`), nothing unpickled. :func:`install` registers the allow-list
and :func:`load_checkpoint_file` as MMEngine's local-file loader (explicit ``weights_only=True``;
errors naming the file and the fix).
"""
import hashlib
import os.path as osp
import pickle
import re
from typing import Any, List, Optional

import numpy as np
import torch
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader
from packaging.version import Version

from .checkpoint_files import is_complete, previous_checkpoint

__all__ = ['ALLOWED_GLOBALS', 'CheckpointReadError', 'UnsafeCheckpointError', 'allowed_globals',
           'check_complete', 'file_sha256', 'install', 'load_checkpoint_file']


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint holds an object outside mmkdcal's allow-list; it was not unpickled."""


class CheckpointReadError(RuntimeError):
    """A checkpoint file is truncated or corrupt (not a complete torch checkpoint)."""


#: numpy's array and scalar reconstruction (moved from numpy.core to numpy._core in numpy 2.0).
NUMPY_MULTIARRAY = getattr(getattr(np, '_core', None), 'multiarray', None) or np.core.multiarray


def _history_buffer_getattr(obj: Any, name: str) -> Any:
    """``getattr`` restricted to the statistics methods of MMEngine's ``HistoryBuffer``."""
    allowed = {'min', 'max', 'current', 'mean'} | set(HistoryBuffer._statistics_methods)
    if obj is HistoryBuffer and isinstance(name, str) and name in allowed:
        return getattr(obj, name)
    raise UnsafeCheckpointError(
        f'checkpoint asks for getattr({obj!r}, {name!r}); only HistoryBuffer statistics are '
        'allowed.')


def allowed_globals() -> List[Any]:
    """What MMEngine/MMDetection checkpoints hold besides tensors, for ``add_safe_globals``."""
    allowed: List[Any] = [HistoryBuffer, np.ndarray, np.dtype,
                          # HistoryBuffer pickles its statistics as getattr(HistoryBuffer, 'mean'):
                          # the GLOBAL "getattr" resolves to a getattr that allows only that.
                          (_history_buffer_getattr, 'builtins.getattr'),
                          (_history_buffer_getattr, '__builtin__.getattr')]
    allowed += [NUMPY_MULTIARRAY._reconstruct, NUMPY_MULTIARRAY.scalar]
    # the concrete dtype classes (numpy>=1.25) that pickled dtypes reference
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:
        allowed += [getattr(dtypes, name) for name in dir(dtypes) if name.endswith('DType')]
    return allowed


ALLOWED_GLOBALS: Optional[List[Any]] = None

#: ``add_safe_globals`` exists from torch 2.4 on; an older torch (the MMRazor benchmark's 1.13)
#: loads tensors and containers, and refuses the rest with :class:`UnsafeCheckpointError`.
TORCH_HAS_SAFE_GLOBALS = Version(torch.__version__.split('+')[0]) >= Version('2.4.0')


def install() -> None:
    """Register the allow-list with torch and :func:`load_checkpoint_file` with MMEngine
    (idempotent)."""
    global ALLOWED_GLOBALS
    if ALLOWED_GLOBALS is None:
        ALLOWED_GLOBALS = allowed_globals()
        if TORCH_HAS_SAFE_GLOBALS:
            torch.serialization.add_safe_globals(ALLOWED_GLOBALS)
    if getattr(CheckpointLoader, '_schemes', {}).get('') is not load_checkpoint_file:
        CheckpointLoader.register_scheme(prefixes='', loader=load_checkpoint_file, force=True)


_GLOBAL = re.compile(r'GLOBAL ([\w.]+)')


def _refused_reason(message: str) -> Optional[str]:
    """What torch's weights_only unpickler refused, or None if the error is not a refusal."""
    names = list(dict.fromkeys(_GLOBAL.findall(message)))
    if names:
        return 'it asks to unpickle ' + ', '.join(f'`{n}`' for n in names)
    for line in message.splitlines():
        if 'only HistoryBuffer' in line:
            return line.strip()
        if 'Unsupported' in line or 'unsupported' in line:
            # e.g. an unsupported pickle opcode; drop torch's advice that follows in the line
            return line.strip().split('. ')[0]
    return None


_DAMAGE_MARKERS = ('PytorchStreamReader', 'unexpected EOF', 'corrupted', 'truncated')


def _looks_damaged(filename: str, exc: BaseException) -> bool:
    """Whether ``torch.load`` failed because the file is cut short or corrupt."""
    if isinstance(exc, EOFError) or type(exc).__module__ == 'struct':
        return True
    return any(m in str(exc) for m in _DAMAGE_MARKERS) or not is_complete(filename)


def _read_error(filename: str, exc: BaseException) -> CheckpointReadError:
    detail = str(exc).split('. ')[0] or type(exc).__name__
    previous = previous_checkpoint(filename)
    if previous:
        hint = (f' The previous complete checkpoint in {osp.dirname(osp.abspath(filename))} is '
                f'{previous}: use it instead (to resume training: --resume {previous}).')
    else:
        hint = ' No other complete checkpoint is beside it.'
    return CheckpointReadError(
        f'checkpoint file {filename!r} could not be read: it is truncated or corrupt '
        f'({type(exc).__name__}: {detail}). A save that was interrupted (a killed process, a '
        f'full disk) leaves such a file.{hint}')


def check_complete(filename: str) -> None:
    """Raise :class:`CheckpointReadError` if ``filename`` is a zip checkpoint cut short (cheap:
    reads the zip directory, so entry points fail before they build a runner)."""
    if osp.isfile(filename) and not is_complete(filename):
        raise _read_error(filename, EOFError('its zip directory, written last, is missing'))


def load_checkpoint_file(filename: str, map_location: Any = None) -> Any:
    """Load a local checkpoint (``map_location`` as in :func:`torch.load`) with
    ``weights_only=True`` and the mmkdcal allow-list; raises :class:`UnsafeCheckpointError` for an
    object outside it, :class:`CheckpointReadError` for a truncated or corrupt file.
    """
    install()
    filename = osp.expanduser(filename)
    if osp.isdir(filename):
        raise IsADirectoryError(f'checkpoint {filename!r} is a directory, not a checkpoint file.')
    if not osp.isfile(filename):
        raise FileNotFoundError(f'checkpoint file {filename!r} does not exist.')
    try:
        return torch.load(filename, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        reason = _refused_reason(str(exc))
        if reason is None:
            if _looks_damaged(filename, exc):  # e.g. legacy format cut short
                raise _read_error(filename, exc) from exc
            raise
        raise UnsafeCheckpointError(
            f'Refused to load {filename!r}: {reason}, which is outside the allow-list of safe '
            'types, so nothing was unpickled. Checkpoints written by MMEngine/MMDetection/'
            'mmkdcal load as they are. If you trust this file and know what that object is, '
            'register it with `torch.serialization.add_safe_globals([...])` before loading, or '
            're-save the checkpoint with only tensors and plain containers.') from exc
    except Exception as exc:
        if _looks_damaged(filename, exc):
            raise _read_error(filename, exc) from exc
        raise  # e.g. a CUDA checkpoint on a machine without CUDA: torch's message says so


def file_sha256(path: str) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            h.update(block)
    return h.hexdigest()
