"""Install mmkdcal: ``pip install -e .`` (the MMDetection stack itself: ``bash tools/install.sh``)."""
import os.path as osp

from setuptools import find_packages, setup

here = osp.dirname(osp.abspath(__file__))
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
    zip_safe=False,
)
