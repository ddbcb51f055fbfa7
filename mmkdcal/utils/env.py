"""The installed stack mmkdcal needs: which packages are missing or out of range."""
from importlib import metadata
from typing import Dict, List, Optional, Tuple

from packaging.version import Version

from ..version import PINNED, REQUIRED

_INSTALL_HINT = ('Install the pinned stack with `bash tools/install.sh` from the mmkdcal '
                 'checkout (it builds mmcv with its compiled ops).')


def _installed(name: str) -> Optional[str]:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def find_version_problems(required: Optional[Dict[str, Tuple[str, str]]] = None) -> List[str]:
    """Return one human-readable line per package that is missing or out of range."""
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
