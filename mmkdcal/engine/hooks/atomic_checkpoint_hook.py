"""``AtomicCheckpointHook``: MMEngine's ``CheckpointHook`` with saves that cannot lose data.

MMEngine 0.10.7's hook removes retired checkpoints before it writes the new one, in place. This
hook runs the stock code and changes only the order: write ``<name>.part``, ``fsync``, rename
(atomic), then ``last_checkpoint``, then remove retired ones. A failed write removes its
``.part`` and raises an ``OSError`` naming the file and the last complete checkpoint; a
non-local backend is written in place, old ones still removed last (docs/usage.md).
"""
import contextlib
import os
import os.path as osp
from typing import Any, Iterator, List, Optional, Set

from mmengine.dist import is_main_process
from mmengine.fileio.backends import LocalBackend
from mmengine.hooks import CheckpointHook
from mmengine.runner import Runner

from mmdet.registry import HOOKS

from ...models.distillers.distiller_mixin import adopt_legacy_distill_state
from ...utils.checkpoint import install
from ...utils.checkpoint_files import ResumeError, list_checkpoints
from ...utils.work_dir import WorkDirLock

__all__ = ['AtomicCheckpointHook']

PART_SUFFIX = '.part'


class _DeferredRemoval:
    """A file backend whose ``remove``/``rmtree`` are recorded, not done; all else passes."""

    def __init__(self, backend: Any, pending: List[str]) -> None:
        self._backend = backend
        self._pending = pending

    def remove(self, path: str) -> None:
        self._pending.append(path)

    rmtree = remove

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)


def _fsync(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """``CheckpointHook`` (same arguments) that writes each checkpoint atomically, removes old
    ones last, and installs mmkdcal's safe checkpoint loading before a resume.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        install()
        self._in_save = False
        self._pending: List[str] = []
        self._written: Set[str] = set()
        self._lock: Optional[WorkDirLock] = None

    def _is_local(self) -> bool:
        backend = getattr(self, 'file_backend', None)
        if isinstance(backend, _DeferredRemoval):
            backend = backend._backend
        return isinstance(backend, LocalBackend)

    def before_train(self, runner: Runner) -> None:
        """Lock the work dir (until ``after_train``), set up as the stock hook, refuse a resume that
        loaded nothing (it would overwrite the work dir's checkpoints), remove ``.part`` files.
        """
        self._lock = WorkDirLock(runner.work_dir).acquire()
        super().before_train(runner)
        self._refuse_a_resume_that_resumed_nothing(runner)
        if not self._is_local():
            runner.logger.warning(
                f'Checkpoints go to {self.out_dir}, which is not a local directory: they are '
                'written in place (no atomic rename on that backend); old ones are removed only '
                'after the new one is written.')
            return
        if is_main_process() and osp.isdir(self.out_dir):
            for name in sorted(os.listdir(self.out_dir)):
                path = osp.join(self.out_dir, name)
                if name.endswith('.pth' + PART_SUFFIX) and osp.isfile(path):
                    os.remove(path)
                    runner.logger.info(f'Removed {path}, left by an interrupted save.')

    def after_train(self, runner: Runner) -> None:
        """Save as the stock hook, then release the work dir's lock."""
        try:
            super().after_train(runner)
        finally:
            if self._lock is not None:
                self._lock.release()

    def after_load_checkpoint(self, runner: Runner, checkpoint: dict) -> None:
        """On resume, hand a legacy checkpoint's adapters (``distill_state_dict``, written by
        earlier versions of the calibration hook) to the distiller, with or without that hook."""
        if getattr(runner, '_resume', False):
            adopt_legacy_distill_state(checkpoint)

    def _refuse_a_resume_that_resumed_nothing(self, runner: Runner) -> None:
        if not getattr(runner, '_resume', False) or runner.iter > 0 or runner.epoch > 0:
            return
        if not self._is_local():
            return
        found = list_checkpoints(self.out_dir, self.filename_tmpl)
        if found:
            raise ResumeError(
                f'resume was requested, but no checkpoint was resumed (MMEngine reads only '
                f'{osp.join(runner.work_dir, "last_checkpoint")}), and starting at iteration 0 '
                f'would overwrite the checkpoints in {self.out_dir} ({found[-1][1]} is the '
                f'newest). Resume from it explicitly (--resume {found[-1][1]}), or use '
                "mmkdcal's tools/train.py, whose --resume finds it.")

    def _save_checkpoint_with_step(self, runner: Runner, step: int, meta: dict) -> None:
        with self._transaction(runner):
            super()._save_checkpoint_with_step(runner, step, meta)

    def _save_best_checkpoint(self, runner: Runner, metrics: dict) -> None:
        with self._transaction(runner):
            super()._save_best_checkpoint(runner, metrics)

    @contextlib.contextmanager
    def _transaction(self, runner: Runner) -> Iterator[None]:
        """Within it, saves go through :meth:`_save_atomic` and removals wait for the end."""
        if self._in_save:  # _save_best_checkpoint calls _save_checkpoint_with_step
            yield
            return
        self._in_save = True
        backend = self.file_backend
        self.file_backend = _DeferredRemoval(backend, self._pending)
        had_attr = 'save_checkpoint' in vars(runner)
        original = runner.save_checkpoint

        def save_checkpoint(out_dir: str, filename: str, *args: Any, **kwargs: Any) -> None:
            self._save_atomic(runner, original, out_dir, filename, *args, **kwargs)

        runner.save_checkpoint = save_checkpoint
        completed = False
        try:
            yield
            completed = True
        finally:
            if had_attr:
                runner.save_checkpoint = original
            else:
                del runner.save_checkpoint
            self.file_backend = backend
            self._in_save = False
            pending, self._pending = self._pending, []
            written, self._written = self._written, set()
        if completed and is_main_process():
            for path in pending:
                if path in written:
                    continue
                if backend.isfile(path):
                    backend.remove(path)
                elif backend.isdir(path):  # checkpoints saved by DeepSpeed are directories
                    backend.rmtree(path)

    def _save_atomic(self, runner: Runner, original: Any, out_dir: str, filename: str,
                     *args: Any, **kwargs: Any) -> None:
        final = self.file_backend.join_path(out_dir, filename)
        if not (self._is_local() and is_main_process() and isinstance(runner, Runner)):
            original(out_dir, filename, *args, **kwargs)
            self._written.add(final)
            return
        part = final + PART_SUFFIX
        try:
            original(out_dir, filename + PART_SUFFIX, *args, **kwargs)
            _fsync(part)
            os.replace(part, final)
            _fsync(osp.dirname(osp.abspath(final)))
        except BaseException as exc:
            if osp.lexists(part):
                os.remove(part)
            if isinstance(exc, OSError):
                message = self._failure_message(runner, final, exc)
                if exc.errno is None:
                    raise OSError(message) from exc
                raise OSError(exc.errno, message) from exc
            raise
        self._written.add(final)

    @staticmethod
    def _failure_message(runner: Runner, final: str, exc: OSError) -> str:
        last = osp.join(runner.work_dir, 'last_checkpoint')
        previous = None
        if osp.isfile(last):
            with open(last) as f:
                previous = f.read().strip() or None
        where = (f'The last complete checkpoint, {previous}, is intact; resume from it with '
                 '--resume once the cause is fixed.' if previous and osp.isfile(previous) else
                 'No earlier checkpoint of this run was removed.')
        return (f'could not write checkpoint {final} ({exc.strerror or exc}); the partial file '
                f'{final + PART_SUFFIX} was removed. {where}')
