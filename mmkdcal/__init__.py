"""mmkdcal: knowledge distillation from a calibrated teacher, as an MMDetection 3.x plug-in.

Importing this package (``custom_imports=dict(imports=['mmkdcal'])`` in a config) registers every
model, loss, hook, metric and dataset of the project in MMDetection's registries, after checking
that the installed OpenMMLab stack is one mmkdcal works with, and registers the checkpoint
allow-list that safe ``weights_only=True`` loading needs (:mod:`mmkdcal.utils.checkpoint`). It
also makes ``mmkdcal::`` config paths resolve in ``Config.fromfile``
(:mod:`mmkdcal.utils.config_scope`).

``mmkdcal.calibration`` needs only torch and numpy. Where MMDetection is missing, or installed but
unusable (a wrong version, mmcv without its compiled ops), ``import mmkdcal.calibration`` still
works: the OpenMMLab parts are then not registered, a warning says why, and importing them
(``mmkdcal.models``...) raises an ImportError naming the package, the version found and the pin.
"""
import warnings
from importlib.util import find_spec
from typing import Optional

from .version import __version__

__all__ = ['__version__', 'calibration', 'openmmlab_problem', 'register_all_modules']

_OPENMMLAB_PARTS = ('datasets', 'engine', 'evaluation', 'models')


def openmmlab_problem() -> Optional[str]:
    """Why mmkdcal's OpenMMLab parts cannot be used here, or None when they can."""
    if find_spec('mmdet') is None:
        return ('MMDetection is not installed (mmkdcal.calibration works without it; for the '
                'rest run `bash tools/install.sh` from the mmkdcal checkout)')
    try:
        from .utils.env import check_versions
        check_versions()
        import mmdet.models  # noqa: F401
    except Exception as exc:  # an unusable third-party stack, reported, never hidden
        return f'{type(exc).__name__}: {exc}'
    return None


def register_all_modules() -> None:
    """Register mmkdcal's OpenMMLab parts (idempotent); ImportError if the stack is unusable."""
    problem = openmmlab_problem()
    if problem is not None:
        raise ImportError(f'mmkdcal cannot register its MMDetection parts: {problem}')
    from .utils import checkpoint
    checkpoint.install()
    from .utils.config_scope import register_config_scope
    register_config_scope()
    from . import datasets, engine, evaluation, models  # noqa: F401


def require_openmmlab(part: str) -> None:
    """Raise the stack's problem as an ImportError naming ``part`` (for the OpenMMLab parts)."""
    if _PROBLEM is not None:
        raise ImportError(f'{part} needs a working MMDetection stack: {_PROBLEM}')


def __getattr__(name: str):
    if name in _OPENMMLAB_PARTS:
        require_openmmlab(f'mmkdcal.{name}')
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')


_PROBLEM: Optional[str] = None
_PROBLEM = openmmlab_problem()
if _PROBLEM is None:
    register_all_modules()
    __all__ += list(_OPENMMLAB_PARTS)
elif find_spec('mmdet') is not None:
    warnings.warn(f'mmkdcal: the MMDetection parts are not registered, only mmkdcal.calibration '
                  f'is usable: {_PROBLEM}', stacklevel=2)


from . import calibration  # noqa: E402,F401
