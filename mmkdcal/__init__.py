"""mmkdcal: knowledge distillation from a calibrated teacher, as an MMDetection 3.x plug-in.

Importing this package (``custom_imports=dict(imports=['mmkdcal'])`` in a config) registers every
model, loss, hook, metric and dataset of the project in MMDetection's registries, after checking
that the installed OpenMMLab stack is one mmkdcal works with, and registers the checkpoint
allow-list that safe ``weights_only=True`` loading needs (:mod:`mmkdcal.utils.checkpoint`). It
also makes ``mmkdcal::`` config paths resolve in ``Config.fromfile``
(:mod:`mmkdcal.utils.config_scope`). Whether the stack works is decided by
:mod:`mmkdcal.utils.stack`, which each OpenMMLab part also asks directly.

``mmkdcal.calibration`` needs only torch and numpy. Where MMDetection is missing, or installed but
unusable (a wrong version, mmcv without its compiled ops), ``import mmkdcal.calibration`` still
works: the OpenMMLab parts are then not registered, a warning says why, and importing them
(``mmkdcal.models``...) raises an ImportError naming the package, the version found and the pin.
"""
import warnings
from importlib.util import find_spec

from .utils.stack import openmmlab_problem, require_openmmlab
from .version import __version__

__all__ = ['__version__', 'calibration', 'openmmlab_problem', 'register_all_modules']

_OPENMMLAB_PARTS = ('datasets', 'engine', 'evaluation', 'models')

if openmmlab_problem() is None:
    # The stack works: importing the parts registers them; the two MMEngine patches are
    # installed first, so that the parts' own imports already see them.
    from .utils import checkpoint as _checkpoint
    from .utils import config_scope as _config_scope

    _checkpoint.install()
    _config_scope.register_config_scope()
    from . import datasets, engine, evaluation, models  # noqa: E402,F401

    __all__ += list(_OPENMMLAB_PARTS)
elif find_spec('mmdet') is not None:
    warnings.warn(f'mmkdcal: the MMDetection parts are not registered, only mmkdcal.calibration '
                  f'is usable: {openmmlab_problem()}', stacklevel=2)

from . import calibration  # noqa: E402,F401


def register_all_modules() -> None:
    """Register mmkdcal's OpenMMLab parts (idempotent); ImportError if the stack is unusable.

    ``import mmkdcal`` has already registered them when the stack works; this re-installs the
    two MMEngine patches (safe checkpoint loading, ``mmkdcal::`` config paths) in case other
    code replaced them since.
    """
    require_openmmlab('mmkdcal')
    _checkpoint.install()
    _config_scope.register_config_scope()


def __getattr__(name: str):
    if name in _OPENMMLAB_PARTS:
        require_openmmlab(f'mmkdcal.{name}')
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
