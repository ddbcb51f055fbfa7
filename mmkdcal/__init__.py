"""mmkdcal: knowledge distillation from a calibrated teacher, as an MMDetection 3.x plug-in.

Importing this package (``custom_imports=dict(imports=['mmkdcal'])`` in a config) registers
every model, loss, hook, metric and dataset of the project in MMDetection's registries, makes
checkpoint loading work with ``torch.load(weights_only=True)`` through an explicit allow-list
(see :mod:`mmkdcal.utils.checkpoint`), and makes ``mmkdcal::`` config paths resolve in
``Config.fromfile`` (see :mod:`mmkdcal.utils.config_scope`).

``mmkdcal.calibration`` needs only torch and numpy: on a machine without MMDetection,
``import mmkdcal.calibration`` works and the MMDetection parts are not registered (importing
``mmkdcal.models`` there fails with a message saying what to install).
"""
from importlib.util import find_spec

from .version import __version__

__all__ = ['__version__', 'calibration']

if find_spec('mmdet') is not None:
    from .utils.env import check_versions

    check_versions()

    from .utils import checkpoint as _checkpoint

    _checkpoint.install()

    from .utils.config_scope import register_config_scope

    register_config_scope()

    from . import datasets, engine, evaluation, models  # noqa: F401

    __all__ += ['datasets', 'engine', 'evaluation', 'models']

from . import calibration  # noqa: E402,F401
