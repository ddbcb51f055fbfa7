"""``mmkdcal::`` config paths, resolved like MMDetection's ``mmdet::`` ones.

A config anywhere can inherit one of ours, and a distiller can name its teacher by one::

    _base_ = 'mmkdcal::gfl/kd-cal_gfl_r50_r101_1x_coco.py'
    model = dict(teacher_config='mmkdcal::demo/gfl_r18w32_digits.py', ...)

Where the configs are: ``configs/`` at the repository root. ``pip install`` ships them inside the
package as ``mmkdcal/.mim/configs`` (the layout of mmdet's ``mmdet/.mim/configs``): a copy in a
wheel or a non-editable install, a symlink to ``configs/`` in an editable one (see ``setup.py``).
:func:`package_configs_dir` finds them for the copy of mmkdcal that is imported: the checkout's
``configs/`` when the package sits in a source checkout (also without any install), else the
shipped ``.mim/configs``.

What MMEngine 0.10.7 needs, and what :func:`register_config_scope` does about it:

- ``Config.fromfile`` resolves ``_base_ = '<scope>::<path>'`` in ``Config._get_cfg_path``, which
  asserts that the scope is a key of ``mmengine.config.utils.MODULE2PACKAGE`` (a fixed table of
  OpenMMLab packages) before it looks at any installed package: a scope without an entry fails
  (``mmengine does not support to load mmkdcal config``). So the entry is added.
- It then locates the package through ``pkg_resources`` (``get_installed_path``): the location
  of the installed *distribution*. That is wrong for a PEP 660 editable install (the dist-info
  sits in site-packages, the package in the checkout) and for a checkout on ``PYTHONPATH`` next
  to another installed copy. It also marks every dict of such a base with ``_scope_='mmkdcal'``,
  a registry scope that does not exist (our modules live in mmdet's registries). So for our
  scope only, ``Config._get_cfg_path`` is wrapped: ``mmkdcal::`` paths are resolved with
  :func:`package_configs_dir` and their dicts get ``_scope_='mmdet'``, exactly what a
  ``mmdet::`` base gets. Every other path goes to MMEngine's own code unchanged.

``import mmkdcal`` (or ``custom_imports=dict(imports=['mmkdcal'])``) calls
:func:`register_config_scope`. A config's ``_base_`` is resolved while the file is parsed, before
its ``custom_imports`` run, so the program that parses it must ``import mmkdcal`` first: our
``tools/*.py`` do; with MMDetection's ``tools/train.py`` add ``import mmkdcal`` at its top.
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
    """The folder that holds the configs of the imported copy of mmkdcal.

    Args:
        package_dir: The ``mmkdcal`` package folder (default: the one this module is in).

    Returns:
        The checkout's ``configs/`` when the package sits in a source checkout (a ``setup.py``
        and a ``configs/`` folder next to it), else the shipped ``<package>/.mim/configs``.

    Raises:
        FileNotFoundError: Neither exists (an install made without the configs).
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
    """Turn ``'<scope>::<relative path>'`` into the config file's path; other paths pass through.

    ``mmkdcal::`` paths are looked up in :func:`package_configs_dir`; other scopes
    (``mmdet::`` ...) with MMEngine's own lookup of the installed package's ``.mim/configs``.

    Args:
        path: A config path, e.g. ``'mmkdcal::demo/gfl_r18w32_digits.py'``,
            ``'mmdet::gfl/gfl_r50_fpn_1x_coco.py'`` or ``'configs/x.py'``.

    Returns:
        The absolute path of a scoped config; ``path`` itself otherwise.

    Raises:
        FileNotFoundError: A scoped config that does not exist (the message lists what does).
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
    """Make ``mmkdcal::`` config paths work in ``Config.fromfile`` (idempotent).

    Adds ``'mmkdcal'`` to MMEngine's ``MODULE2PACKAGE`` table (so ``mmengine.hub.get_config``
    accepts the scope too) and wraps ``Config._get_cfg_path`` for this scope only (see the
    module docstring for why).
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
