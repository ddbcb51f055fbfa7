"""mmkdcal: knowledge distillation from a calibrated teacher, as an MMDetection 3.x plug-in.

``import mmkdcal`` (or ``custom_imports``) registers every model, loss, hook, metric and dataset
in MMDetection's registries when the OpenMMLab stack works (:mod:`mmkdcal.utils.stack`), with
safe checkpoint loading and ``mmkdcal::`` config paths. ``mmkdcal.calibration`` needs only torch
and numpy: without a usable stack it still imports, a warning says why, and importing the other
parts raises an ImportError naming the package, the version found and the pin.
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
    """Re-install the two MMEngine patches (safe loading, ``mmkdcal::`` paths) in case other
    code replaced them (idempotent); ImportError if the stack is unusable."""
    require_openmmlab('mmkdcal')
    _checkpoint.install()
    _config_scope.register_config_scope()


def __getattr__(name: str):
    if name in _OPENMMLAB_PARTS:
        require_openmmlab(f'mmkdcal.{name}')
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
