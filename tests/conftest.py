"""Shared test set-up: the repo root and tests/ on sys.path, single-threaded torch."""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
for path in (ROOT, HERE):
    if path not in sys.path:
        sys.path.insert(0, path)

os.environ.setdefault('OMP_NUM_THREADS', '1')
os.environ.setdefault('MPLBACKEND', 'Agg')

try:  # build mmdet models outside a Runner (default scope 'mmdet'), as MMDetection's tests do
    from mmdet.utils import register_all_modules
except ImportError:  # pragma: no cover - calibration-only environments
    register_all_modules = None
if register_all_modules is not None:
    register_all_modules(init_default_scope=True)

try:  # MMEngine formats every config it dumps or logs with yapf (about 2/3 of a 2-iteration
    # Runner test's time on CPU); the tests keep the unformatted text, the same Python
    import mmengine.config.config as _mmengine_config
except ImportError:  # pragma: no cover - calibration-only environments
    _mmengine_config = None
if _mmengine_config is not None:
    _mmengine_config.FormatCode = lambda text, style_config=None, **kwargs: (text, None)
