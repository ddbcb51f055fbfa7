"""Progress lines with elapsed time and ETA for long steps outside the MMEngine training loop::

    progress = EtaProgress(3000, 'DigitsDet train', log=print)
    progress.update()  # per unit; logs e.g. "DigitsDet train: 1200/3000 (40%), elapsed 0:00:04,
    # ETA 0:00:06"
"""
import time
from typing import Callable, Optional

__all__ = ['EtaProgress', 'format_duration']


def format_duration(seconds: float) -> str:
    """``H:MM:SS`` (as MMEngine's ``eta``), e.g. ``format_duration(3725) == '1:02:05'``."""
    seconds = max(0, int(round(seconds)))
    return f'{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}'


class EtaProgress:
    """Count finished units of work (``total`` >= 1) and log ``name: done/total, elapsed, ETA``
    through ``log`` at most every ``interval`` seconds (the last unit always); ``clock`` for tests.
    """

    def __init__(self, total: int, name: str, log: Callable[[str], None] = print,
                 interval: float = 5.0, clock: Optional[Callable[[], float]] = None) -> None:
        if int(total) < 1:
            raise ValueError(f'EtaProgress: total must be >= 1, got {total}.')
        self.total = int(total)
        self.name = name
        self.log = log
        self.interval = float(interval)
        self.clock = clock or time.monotonic
        self.start = self.clock()
        self.done = 0
        self._last_log: Optional[float] = None

    def eta(self) -> Optional[float]:
        """Seconds left, or None before the first unit is done."""
        if self.done == 0:
            return None
        elapsed = self.clock() - self.start
        return elapsed / self.done * (self.total - self.done)

    def line(self, note: str = '') -> str:
        """The progress line for the current state."""
        elapsed = self.clock() - self.start
        eta = self.eta()
        text = (f'{self.name}: {self.done}/{self.total} ({100 * self.done // self.total}%), '
                f'elapsed {format_duration(elapsed)}, ETA '
                f'{format_duration(eta) if eta is not None else "?"}')
        return f'{text} {note}'.rstrip() if note else text

    def update(self, n: int = 1, note: str = '', force: bool = False) -> None:
        """Mark ``n`` more units done (``note`` appended); log if ``interval`` has passed, at
        the end or with ``force``."""
        self.done = min(self.total, self.done + int(n))
        now = self.clock()
        due = self._last_log is None or now - self._last_log >= self.interval
        if force or due or self.done == self.total:
            self._last_log = now
            self.log(self.line(note))
