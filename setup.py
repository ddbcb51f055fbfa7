"""Install mmkdcal: ``pip install -e .`` (the MMDetection stack itself: ``bash tools/install.sh``).

``configs/``, ``tools/`` and ``model-index.yml`` stay at the repository root and are shipped
inside the package as ``mmkdcal/.mim/`` (the layout of MMDetection's ``mmdet/.mim``), which is
where ``mmkdcal::`` config paths and OpenMMLab's ``mim`` look for them:

- wheels and non-editable installs (``pip install .``, ``python -m build``): copied into the
  build's ``mmkdcal/.mim`` (the source tree is not touched);
- editable installs (``pip install -e .``, PEP 660 or ``setup.py develop``): ``mmkdcal/.mim/*``
  in the checkout become relative symlinks to the root folders, so edits show at once
  (copies where symlinks are unavailable).
"""
import os
import os.path as osp
import shutil

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py
from setuptools.command.develop import develop

here = osp.dirname(osp.abspath(__file__))

#: What ``mmkdcal/.mim`` holds: repository-root paths.
MIM_FILES = ('configs', 'tools', 'model-index.yml')
_IGNORE = shutil.ignore_patterns('__pycache__', '*.pyc', '*.pyo')


def _clear(path):
    if osp.islink(path) or osp.isfile(path):
        os.remove(path)
    elif osp.isdir(path):
        shutil.rmtree(path)


def _ship(mim_dir, link):
    """Put ``MIM_FILES`` into ``mim_dir``: relative symlinks (``link``) or copies."""
    os.makedirs(mim_dir, exist_ok=True)
    for name in MIM_FILES:
        src, dst = osp.join(here, name), osp.join(mim_dir, name)
        if not osp.exists(src):
            raise FileNotFoundError(f'{src} is missing: the source tree is incomplete.')
        _clear(dst)
        if link:
            try:
                os.symlink(osp.relpath(src, mim_dir), dst)
                continue
            except OSError:  # e.g. a file system without symlinks: copy instead
                pass
        if osp.isdir(src):
            shutil.copytree(src, dst, ignore=_IGNORE)
        else:
            shutil.copyfile(src, dst)


class BuildPyWithMim(build_py):
    """``build_py`` that also copies ``MIM_FILES`` into the built package."""

    def run(self):
        super().run()
        if getattr(self, 'editable_mode', False):  # PEP 660: the package is the checkout
            _ship(osp.join(here, 'mmkdcal', '.mim'), link=True)
        else:
            _ship(osp.join(self.build_lib, 'mmkdcal', '.mim'), link=False)


class DevelopWithMim(develop):
    """``setup.py develop`` (legacy editable install) with the ``.mim`` symlinks."""

    def run(self):
        _ship(osp.join(here, 'mmkdcal', '.mim'), link=True)
        super().run()


version = {}
with open(osp.join(here, 'mmkdcal', 'version.py')) as f:
    exec(f.read(), version)

with open(osp.join(here, 'README.md'), encoding='utf-8') as f:
    long_description = f.read()

setup(
    name='mmkdcal',
    version=version['__version__'],
    description='Knowledge distillation from a calibrated teacher, as an MMDetection 3.x plug-in',
    long_description=long_description,
    long_description_content_type='text/markdown',
    packages=find_packages(include=['mmkdcal', 'mmkdcal.*']),
    python_requires='>=3.9',
    # Ranges, not pins: a plug-in must live inside its users' environments. The pinned, tested
    # stack is in requirements/ and installed by tools/install.sh.
    install_requires=[
        'torch>=2.0,<2.14',
        'numpy',
        'mmengine>=0.10.0,<0.11',
        'mmdet>=3.3.0,<3.4',
        'mmcv>=2.0.0,<2.2.0',
        'pycocotools>=2.0.8',
        'scikit-learn',
        'matplotlib',
        'tqdm',
    ],
    extras_require={'tests': ['pytest', 'torchmetrics', 'netcal']},
    license='Apache-2.0',
    cmdclass={'build_py': BuildPyWithMim, 'develop': DevelopWithMim},
    zip_safe=False,
)
