"""``mmkdcal::`` config paths, resolved like MMDetection's ``mmdet::`` ones (docs/usage.md).

``_base_ = 'mmkdcal::gfl/kd-cal_gfl_r50_r101_1x_coco.py'`` and
``teacher_config='mmkdcal::demo/gfl_r18w32_digits.py'`` resolve to the configs of the imported
copy of mmkdcal (:func:`package_configs_dir`); ``import mmkdcal`` registers the scope.
"""
import os
import os.path as osp
from typing import List, Optional, Tuple

from mmengine.config import Config
from mmengine.config.utils import MODULE2PACKAGE

__all__ = ['SCOPE', 'package_configs_dir', 'register_config_scope', 'resolve_config_path']

#: The config scope of this package (``'mmkdcal::<family>/<config>.py'``).
SCOPE = 'mmkdcal'

#: The registry scope the dicts of an ``mmkdcal::`` base are built in (ours are mmdet's).
REGISTRY_SCOPE = 'mmdet'

_PACKAGE_DIR = osp.dirname(osp.dirname(osp.abspath(__file__)))


def package_configs_dir(package_dir: Optional[str] = None) -> str:
    """The configs of the imported mmkdcal: the checkout's ``configs/`` (a ``setup.py`` beside the
    package), else the shipped ``<package>/.mim/configs``; FileNotFoundError if neither exists.
    """
    package_dir = osp.abspath(package_dir or _PACKAGE_DIR)
    root = osp.dirname(package_dir)
    checkout = osp.join(root, 'configs')
    if osp.isfile(osp.join(root, 'setup.py')) and osp.isdir(checkout):
        return checkout
    shipped = osp.join(package_dir, '.mim', 'configs')
    if osp.isdir(shipped):
        return shipped
    raise FileNotFoundError(
        f"mmkdcal's configs are not where they belong: {shipped} does not exist (nor a source "
        f'checkout with configs/ around {package_dir}). Reinstall mmkdcal with pip from its '
        'source tree or wheel, which ships configs/ inside the package.')


def _config_choices(folder: str, limit: int = 8) -> List[str]:
    if not osp.isdir(folder):
        return []
    return sorted(f for f in os.listdir(folder) if f.endswith('.py') or
                  osp.isdir(osp.join(folder, f)))[:limit]


def resolve_config_path(path: str) -> str:
    """``'<scope>::<relative path>'`` -> the config file's absolute path; other paths pass through.

    Raises:
        FileNotFoundError: A scoped config that does not exist (listing what does).
    """
    if '::' not in path:
        return path
    scope, _, rel = path.partition('::')
    if not scope or not rel or '::' in rel:
        raise ValueError(f"config path {path!r}: write it as '<scope>::<folder>/<config>.py', "
                         "e.g. 'mmkdcal::demo/gfl_r18w32_digits.py'.")
    if scope == SCOPE:
        folder = package_configs_dir()
        full = osp.join(folder, rel)
        if not osp.isfile(full):
            parent = osp.dirname(full)
            where = parent if osp.isdir(parent) else folder
            raise FileNotFoundError(
                f'{path!r}: there is no {rel} in mmkdcal\'s configs ({folder}); '
                f'{osp.relpath(where, folder)}/ holds {_config_choices(where)}.')
        return full
    original = getattr(Config._get_cfg_path, '__wrapped__', Config._get_cfg_path)
    full, _ = original(path, '')
    return full


def _get_cfg_path(cfg_path: str, filename: str) -> Tuple[str, Optional[str]]:
    """``Config._get_cfg_path`` with ``mmkdcal::`` paths resolved by this module."""
    if cfg_path.startswith(SCOPE + '::'):
        return resolve_config_path(cfg_path), REGISTRY_SCOPE
    return _get_cfg_path.__wrapped__(cfg_path, filename)


def register_config_scope() -> None:
    """Make ``mmkdcal::`` paths work in ``Config.fromfile`` (idempotent): add the scope to
    MMEngine's ``MODULE2PACKAGE`` and wrap ``Config._get_cfg_path`` for this scope only.
    """
    MODULE2PACKAGE.setdefault(SCOPE, 'mmkdcal')
    current = Config._get_cfg_path
    if current is _get_cfg_path:
        return
    # a wrapper left by an earlier copy of this module (importlib.reload): wrap what it wrapped
    original = current.__wrapped__ if getattr(current, '_mmkdcal_scope', False) else current
    _get_cfg_path.__wrapped__ = original
    _get_cfg_path._mmkdcal_scope = True
    Config._get_cfg_path = staticmethod(_get_cfg_path)
