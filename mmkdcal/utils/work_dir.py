"""One run per work dir: a lock (``<work_dir>/.mmkdcal_run.lock``: pid, host, start time) held
while a run trains. A live holder, or one on another host, is refused (:class:`WorkDirInUseError`);
a dead one's lock is taken over with a warning; only global rank 0 locks (docs/usage.md).
"""
import atexit
import json
import logging
import os
import os.path as osp
import socket
import time
from typing import Optional

from mmengine.logging import print_log

__all__ = ['LOCK_NAME', 'WorkDirInUseError', 'WorkDirLock']

LOCK_NAME = '.mmkdcal_run.lock'


class WorkDirInUseError(RuntimeError):
    """Another live run holds the work dir; nothing was started."""


def _start_time(pid: int) -> Optional[int]:
    """The start time of process ``pid`` in clock ticks since boot (Linux), or None."""
    try:
        with open(f'/proc/{pid}/stat') as f:
            fields = f.read().rsplit(')', 1)[1].split()
        return int(fields[19])  # field 22 of stat(5); the split starts at field 3
    except (OSError, IndexError, ValueError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _global_rank() -> int:
    for key in ('RANK', 'SLURM_PROCID', 'OMPI_COMM_WORLD_RANK'):
        if key in os.environ:
            return int(os.environ[key])
    return 0


class WorkDirLock:
    """The lock of one run on ``work_dir`` (created if needed): :meth:`acquire` before the run,
    :meth:`release` at its end (also at exit), or a context manager.
    """

    def __init__(self, work_dir: str) -> None:
        self.work_dir = work_dir
        self.path = osp.join(work_dir, LOCK_NAME)
        self.held = False

    def _record(self) -> dict:
        return dict(pid=os.getpid(), host=socket.gethostname(), start=_start_time(os.getpid()),
                    started_at=time.strftime('%Y-%m-%d %H:%M:%S %Z'))

    def _read(self) -> Optional[dict]:
        try:
            with open(self.path) as f:
                return json.load(f)
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return {}

    def _holder_is_live(self, holder: dict) -> Optional[bool]:
        """True: live; False: gone (stale lock); None: cannot tell (another host, no pid)."""
        pid = holder.get('pid')
        if not isinstance(pid, int) or holder.get('host') != socket.gethostname():
            return None
        if not _alive(pid):
            return False
        start, now = holder.get('start'), _start_time(pid)
        if start is not None and now is not None and start != now:
            return False  # the pid was reused by another process
        return True

    def acquire(self) -> 'WorkDirLock':
        """Take the lock (global rank 0 only); WorkDirInUseError if a live run holds it."""
        if _global_rank() != 0 or self.held:
            return self
        os.makedirs(self.work_dir, exist_ok=True)
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = self._read()
                if holder is None:
                    continue  # released meanwhile
                if holder.get('pid') == os.getpid() and holder.get('host') == socket.gethostname():
                    return self  # this process holds it already (its first holder releases)
                live = self._holder_is_live(holder)
                if live is False:
                    self._take_over(holder)
                    continue
                self._refuse(holder, live)
            with os.fdopen(fd, 'w') as f:
                json.dump(self._record(), f)
            self.held = True
            atexit.register(self.release)
            return self
        raise WorkDirInUseError(
            f'work dir {self.work_dir!r}: could not take its lock {self.path} (another run is '
            'taking it at the same time). Start one run per work dir; use --work-dir NEW_DIR.')

    def _take_over(self, holder: dict) -> None:
        aside = f'{self.path}.stale.{os.getpid()}'
        try:
            os.rename(self.path, aside)  # only one of two racing runs succeeds
        except FileNotFoundError:
            return
        os.remove(aside)
        print_log(
            f'work dir {self.work_dir}: took over the lock {self.path} left by process '
            f"{holder.get('pid')} on {holder.get('host')} (started {holder.get('started_at')}), "
            'which no longer runs.', logger='current', level=logging.WARNING)

    def _refuse(self, holder: dict, live: Optional[bool]) -> None:
        who = (f"process {holder.get('pid')} on host {holder.get('host')} (started "
               f"{holder.get('started_at')})")
        if live:
            raise WorkDirInUseError(
                f'work dir {self.work_dir!r} is in use by a running training, {who}: two runs in '
                'one work dir write over each other\'s checkpoints. Wait for it to end, or start '
                'this run in another directory with --work-dir NEW_DIR.')
        raise WorkDirInUseError(
            f'work dir {self.work_dir!r} is locked by {who}, which cannot be checked from this '
            f'host ({socket.gethostname()}). If that run is still going, start this one with '
            f'--work-dir NEW_DIR; if it has ended, remove {self.path} and start again.')

    def release(self) -> None:
        """Remove the lock file if this process still holds it."""
        if not self.held:
            return
        self.held = False
        holder = self._read()
        if holder and holder.get('pid') == os.getpid():
            try:
                os.remove(self.path)
            except FileNotFoundError:
                pass

    def __enter__(self) -> 'WorkDirLock':
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
