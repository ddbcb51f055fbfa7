"""Whether the installed OpenMMLab stack can run mmkdcal's OpenMMLab parts, decided once.

Versions are checked against :data:`mmkdcal.version.REQUIRED`, then ``mmcv.ops`` and
``mmdet.models`` are imported. Each OpenMMLab part calls :func:`require_openmmlab` at its top;
``mmkdcal.calibration`` needs only torch and numpy. Nothing from OpenMMLab is imported here at
import time.
"""
import functools
from importlib import metadata
from importlib.util import find_spec
from typing import Dict, List, Optional, Tuple

from ..version import PINNED, REQUIRED

__all__ = ['check_versions', 'find_version_problems', 'openmmlab_problem', 'require_openmmlab']

_INSTALL_HINT = ('Install the pinned stack with `bash tools/install.sh` from the mmkdcal '
                 'checkout (it builds mmcv with its compiled ops).')


def _installed(name: str) -> Optional[str]:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def find_version_problems(required: Optional[Dict[str, Tuple[str, str]]] = None) -> List[str]:
    """Return one human-readable line per package that is missing or out of range."""
    # optional: packaging, needed only here, so that this module imports with torch and numpy
    from packaging.version import Version
    required = REQUIRED if required is None else required
    problems = []
    for name, (low, high) in required.items():
        found = _installed(name)
        if found is None:
            problems.append(f'{name} is not installed (mmkdcal needs {name}>={low},<{high}; '
                            f'tested with {PINNED.get(name, low)}).')
            continue
        v = Version(found.split('+')[0])
        if not Version(low) <= v < Version(high):
            problems.append(f'{name}=={found} is installed but mmkdcal needs {name}>={low},<{high} '
                            f'(tested with {PINNED.get(name, low)}).')
    return problems


def check_versions() -> None:
    """Raise ImportError naming every missing/wrong package and how to install the right one."""
    problems = find_version_problems()
    if problems:
        raise ImportError('mmkdcal cannot start:\n  - ' + '\n  - '.join(problems) + '\n' +
                          _INSTALL_HINT)
    try:
        # optional: mmcv, tried only once its version is known to fit, so that a missing or
        # unbuilt mmcv is reported with the fix instead of failing this module's import
        import mmcv.ops  # noqa: F401
    except Exception as exc:  # pragma: no cover - depends on the installation
        raise ImportError(
            f'mmcv is installed without its compiled ops ({exc}). Rebuild it from source: '
            '`pip install "setuptools<82" && pip install --no-build-isolation --force-reinstall '
            '--no-deps mmcv==2.1.0`, or run `bash tools/install.sh`.') from exc


@functools.lru_cache(maxsize=None)
def openmmlab_problem() -> Optional[str]:
    """Why mmkdcal's OpenMMLab parts cannot be used here (a sentence with the fix), or None;
    decided once per process.
    """
    if find_spec('mmdet') is None:
        return ('MMDetection is not installed (mmkdcal.calibration works without it; for the '
                'rest run `bash tools/install.sh` from the mmkdcal checkout)')
    try:
        check_versions()
        import mmdet.models  # noqa: F401  # optional: the OpenMMLab stack
    except Exception as exc:  # an unusable third-party stack, reported, never hidden
        return f'{type(exc).__name__}: {exc}'
    return None


def require_openmmlab(part: str) -> None:
    """Raise the stack's problem as an ImportError naming ``part``; return if the stack works."""
    problem = openmmlab_problem()
    if problem is not None:
        raise ImportError(f'{part} needs a working MMDetection stack: {problem}')
