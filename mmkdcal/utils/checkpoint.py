"""Safe checkpoint loading for torch>=2.6 with MMEngine 0.10.7.

Since torch 2.6, ``torch.load`` defaults to ``weights_only=True``: only tensors, containers and
an allow-list of classes are unpickled. MMEngine 0.10.7's training checkpoints hold a few
non-tensor objects (``HistoryBuffer`` in the message hub, numpy arrays and scalars), so
``--resume`` fails out of the box.

mmkdcal keeps ``weights_only=True`` and extends torch's allow-list with exactly the classes those
checkpoints hold (:data:`ALLOWED_GLOBALS`). Anything else in a checkpoint (a custom class, a
``__reduce__`` payload) is refused with :class:`UnsafeCheckpointError`, which names the file and
the offending global; nothing is unpickled.

:func:`install` does two things, once per process (it is idempotent), and nothing else:

1. It registers :data:`ALLOWED_GLOBALS` with ``torch.serialization.add_safe_globals``. This is
   what safe loading of MMEngine checkpoints needs.
2. It registers :func:`load_checkpoint_file` as MMEngine's loader of local files (the ``''``
   prefix of ``CheckpointLoader``; the URL loaders are left alone). That loader is the same
   ``torch.load`` that MMEngine's ``load_from_local`` makes, with two differences:

   - it passes ``weights_only=True`` explicitly. MMEngine passes nothing, so the environment
     variable ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` would silently turn its load into a full
     unpickler; an explicit argument is not overridden by it;
   - its errors name the file and the fix: the refused global (e.g. ``posix.system``) without
     torch's advice to retry with ``weights_only=False``, and, for a truncated file (torch says
     only "PytorchStreamReader failed reading zip archive"), the file and the previous complete
     checkpoint beside it. ``--resume``, ``load_from`` and a distiller's ``teacher_ckpt`` all
     load through MMEngine, so this is the one place where those messages can be given.

``install`` runs when OpenMMLab parts are used: by the entry points in ``tools/``, by
:class:`~mmkdcal.engine.hooks.AtomicCheckpointHook` (which the project's configs select, so that
a run started by MMDetection's own ``tools/train.py`` has it before it resumes), and when the
package's OpenMMLab parts are imported.
"""
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
           'check_complete', 'install', 'load_checkpoint_file']


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint holds an object outside mmkdcal's allow-list; it was not unpickled."""


class CheckpointReadError(RuntimeError):
    """A checkpoint file is truncated or corrupt (not a complete torch checkpoint)."""


def _history_buffer_getattr(obj: Any, name: str) -> Any:
    """``getattr`` restricted to the statistics methods of MMEngine's ``HistoryBuffer``."""
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
    """Register the allow-list with torch and :func:`load_checkpoint_file` with MMEngine.

    Idempotent: the second and later calls change nothing. See the module docstring for why the
    local-file loader is registered.
    """
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
    """Raise :class:`CheckpointReadError` if ``filename`` is a zip checkpoint cut short.

    Cheap (reads the zip directory, unpickles nothing): the entry points call it before they
    build a runner, so that a damaged checkpoint fails before datasets are loaded.

    Args:
        filename: A local checkpoint file.

    Raises:
        CheckpointReadError: naming the file and the previous complete checkpoint beside it.
    """
    if osp.isfile(filename) and not is_complete(filename):
        raise _read_error(filename, EOFError('its zip directory, written last, is missing'))


def load_checkpoint_file(filename: str, map_location: Any = None) -> Any:
    """Load a local checkpoint with ``weights_only=True`` and the mmkdcal allow-list.

    Args:
        filename: Path of the checkpoint file.
        map_location: As in :func:`torch.load`.

    Returns:
        The loaded checkpoint (usually a dict with ``state_dict`` and ``meta``).

    Raises:
        FileNotFoundError: ``filename`` does not exist.
        IsADirectoryError: ``filename`` is a directory.
        UnsafeCheckpointError: the file holds an object outside the allow-list.
        CheckpointReadError: the file is truncated or corrupt.
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
