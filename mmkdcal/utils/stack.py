"""Whether the installed OpenMMLab stack can run mmkdcal's OpenMMLab parts, decided once.

``mmkdcal.calibration`` needs only torch and numpy; the other parts (``datasets``, ``engine``,
``evaluation``, ``models``) need a working MMDetection stack. :func:`openmmlab_problem` says why
that stack is unusable (or None), and :func:`require_openmmlab` turns that answer into an
ImportError naming the part. Each OpenMMLab part calls it at its top, importing it from here
directly, so no part depends on the statement order of ``mmkdcal/__init__.py``. This module
imports nothing from OpenMMLab at import time: it is what decides whether that is possible.
"""
import functools
from importlib.util import find_spec
from typing import Optional

__all__ = ['openmmlab_problem', 'require_openmmlab']


@functools.lru_cache(maxsize=None)
def openmmlab_problem() -> Optional[str]:
    """Why mmkdcal's OpenMMLab parts cannot be used here, or None when they can.

    Decided once per process (the answer cannot change once ``mmdet`` has been imported or
    failed to import).

    Returns:
        A sentence naming the missing or unusable package and the fix, or None.
    """
    if find_spec('mmdet') is None:
        return ('MMDetection is not installed (mmkdcal.calibration works without it; for the '
                'rest run `bash tools/install.sh` from the mmkdcal checkout)')
    try:
        # optional: the OpenMMLab stack (and `packaging`, which env.py uses); this module must
        # import with torch and numpy only, so that mmkdcal.calibration does
        from .env import check_versions
        check_versions()
        import mmdet.models  # noqa: F401  # optional: the OpenMMLab stack (see above)
    except Exception as exc:  # an unusable third-party stack, reported, never hidden
        return f'{type(exc).__name__}: {exc}'
    return None


def require_openmmlab(part: str) -> None:
    """Raise the stack's problem as an ImportError naming ``part``; return if the stack works.

    Args:
        part: The module that needs the stack (``'mmkdcal.models'``), for the message.

    Raises:
        ImportError: The stack is unusable; the message says why and how to fix it.
    """
    problem = openmmlab_problem()
    if problem is not None:
        raise ImportError(f'{part} needs a working MMDetection stack: {problem}')
