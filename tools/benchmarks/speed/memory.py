"""Resident memory of this process (Linux ``/proc``), with a resettable high-water mark."""
import os
import re
import resource
from typing import Optional

__all__ = ['current_rss_bytes', 'peak_rss_bytes', 'reset_peak_rss']


def _status_kib(field: str) -> Optional[int]:
    try:
        with open('/proc/self/status') as f:
            m = re.search(rf'^{field}:\s+(\d+) kB', f.read(), re.MULTILINE)
    except OSError:
        return None
    return int(m.group(1)) if m else None


def current_rss_bytes() -> Optional[int]:
    """The resident set size now (``VmRSS``), or None where ``/proc`` is missing."""
    kib = _status_kib('VmRSS')
    return None if kib is None else kib * 1024


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (``VmHWM``) to the current RSS.

    Returns:
        True if it was reset (Linux >= 4.0 with a writable ``/proc/self/clear_refs``); False
        otherwise, in which case :func:`peak_rss_bytes` is the peak since the process started.
    """
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
    except OSError:
        return False
    return True


def peak_rss_bytes() -> int:
    """The peak resident set size since the process started or the last :func:`reset_peak_rss`."""
    kib = _status_kib('VmHWM')
    if kib is not None:
        return kib * 1024
    # ru_maxrss is in KiB on Linux, bytes on macOS
    scale = 1 if os.uname().sysname == 'Darwin' else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale
