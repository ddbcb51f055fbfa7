"""Progress lines with elapsed time and ETA for long steps outside the MMEngine training loop.

MMEngine's training log prints ``eta`` with every logged iteration; the steps a user waits on
outside it (building a data set, a multi-run study, the demo's runs) print the same kind of line
through :class:`EtaProgress`::

    progress = EtaProgress(3000, 'DigitsDet train', log=print)
    for i in range(3000):
        ...
        progress.update()
    # DigitsDet train: 1200/3000 (40%), elapsed 0:00:04, ETA 0:00:06

The ETA is the mean time per finished unit times the units left.
"""
import time
from typing import Callable, Optional

__all__ = ['EtaProgress', 'format_duration']


def format_duration(seconds: float) -> str:
    """``H:MM:SS`` (as MMEngine's ``eta``), e.g. ``format_duration(3725) == '1:02:05'``."""
    seconds = max(0, int(round(seconds)))
    return f'{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}'


class EtaProgress:
    """Count finished units of work and log ``done/total, elapsed, ETA`` now and then.

    Args:
        total: Units of work in all (images, runs...); must be >= 1.
        name: What is being done, the start of every line.
        log: Called with each line (``print``, ``logger.info``...).
        interval: Log at most every this many seconds (the last unit is always logged).
        clock: Time source in seconds (for tests); default ``time.monotonic``.
    """

    def __init__(self,
                 total: int,
                 name: str,
                 log: Callable[[str], None] = print,
                 interval: float = 5.0,
                 clock: Optional[Callable[[], float]] = None) -> None:
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
        """Mark ``n`` more units done; log if ``interval`` has passed, at the end or ``force``.

        Args:
            n: Units just finished.
            note: Appended to the line (e.g. what just finished).
            force: Log now regardless of ``interval``.
        """
        self.done = min(self.total, self.done + int(n))
        now = self.clock()
        due = self._last_log is None or now - self._last_log >= self.interval
        if force or due or self.done == self.total:
            self._last_log = now
            self.log(self.line(note))
