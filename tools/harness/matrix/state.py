"""What a run's work dir says about it: new, interrupted, trained or done; and its record.

A run is

- ``'new'``: no intact checkpoint in its work dir;
- ``'partial'``: an intact checkpoint short of the schedule's end (training resumes from the
  furthest one with ``--resume``);
- ``'trained'``: a checkpoint at the schedule's end (``max_epochs`` / ``max_iters``), no metrics;
- ``'done'``: trained, and ``test_metrics.json`` written after that checkpoint;
- ``'conflict'``: the work dir holds checkpoints of a run with other options (it is left
  alone; without a checkpoint, a new run simply starts over).

The record (``benchmark_run.json``) lists every attempt the benchmark made in the work dir: the
command, start and end time, exit code, log file, git commit of the code and the host.
"""
import json
import os
import os.path as osp
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

from mmkdcal.utils.checkpoint import load_checkpoint_file
from mmkdcal.utils.checkpoint_files import checkpoint_step, is_complete, list_checkpoints

from .plan import Run, in_root

__all__ = ['LOG_DIR', 'RECORD_FILE', 'RunState', 'checkpoint_progress', 'inspect_run',
           'read_record', 'same_settings', 'write_record']

RECORD_FILE = 'benchmark_run.json'
LOG_DIR = 'benchmark_logs'
#: MMEngine's default checkpoint names: ``epoch_12.pth`` (by epoch), ``iter_400.pth``.
_TEMPLATES = {True: 'epoch_{}.pth', False: 'iter_{}.pth'}


@dataclass
class RunState:
    """See the module docstring for ``stage``.

    Args:
        stage: ``'new'``, ``'partial'``, ``'trained'``, ``'done'`` or ``'conflict'``.
        checkpoint: The furthest intact checkpoint (resume point or final checkpoint), absolute.
        progress: Epochs or iterations that checkpoint has done.
        message: A one-line explanation.
    """

    stage: str
    checkpoint: Optional[str] = None
    progress: Optional[int] = None
    message: str = ''


def read_record(work_dir: str) -> Optional[Dict[str, Any]]:
    """The run's record, or None if the benchmark never ran there."""
    path = osp.join(work_dir, RECORD_FILE)
    if not osp.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)


def write_record(work_dir: str, record: Dict[str, Any]) -> None:
    """Write the record atomically (a killed writer leaves the previous one)."""
    os.makedirs(work_dir, exist_ok=True)
    path = osp.join(work_dir, RECORD_FILE)
    with open(path + '.tmp', 'w') as f:
        json.dump(record, f, indent=2)
    os.replace(path + '.tmp', path)


def same_settings(record: Dict[str, Any], run: Run) -> bool:
    """Whether a work dir's record was made for ``run``'s config and options."""
    return record.get('config') == run.config and record.get('cfg_options') == run.cfg_options


def checkpoint_progress(path: str, by_epoch: bool) -> int:
    """Epochs (``by_epoch``) or iterations done when ``path`` was saved.

    Read from the file name for MMEngine's default names (``epoch_12.pth``, ``iter_400.pth``),
    else from the checkpoint's ``meta`` (loaded with ``weights_only=True``).
    """
    step = checkpoint_step(path, _TEMPLATES[by_epoch])
    if step is not None:
        return step
    meta = load_checkpoint_file(path, map_location='cpu').get('meta', {})
    key = 'epoch' if by_epoch else 'iter'
    if key not in meta:
        raise ValueError(f'checkpoint {path!r} has no meta[{key!r}]: cannot tell how far its '
                         'training went.')
    return int(meta[key])


def _candidates(work_dir: str) -> List[str]:
    """Checkpoints in ``work_dir`` (absolute): ``last_checkpoint``'s target, then the default
    names; paths in ``last_checkpoint`` are relative to where training ran (the repository
    root)."""
    found = []
    last = osp.join(work_dir, 'last_checkpoint')
    if osp.isfile(last):
        with open(last) as f:
            target = f.read().strip()
        if target:
            found.append(osp.normpath(in_root(target)))
    found += sorted(path for template in _TEMPLATES.values()
                    for _, path in list_checkpoints(work_dir, template))
    return list(dict.fromkeys(found))


def inspect_run(run: Run) -> RunState:
    """The state of ``run`` from its work dir (see the module docstring)."""
    work_dir = in_root(run.work_dir)
    best, best_progress = None, -1
    for path in _candidates(work_dir):
        if not is_complete(path):
            continue
        progress = checkpoint_progress(path, run.by_epoch)
        if progress > best_progress:
            best, best_progress = path, progress
    unit = 'epoch' if run.by_epoch else 'iter'
    if best is None:
        return RunState('new', message='no checkpoint yet')
    record = read_record(work_dir)
    if record is not None and not same_settings(record, run):
        return RunState('conflict', best, best_progress, message=(
            f'{run.work_dir} holds a run with other settings (config {record.get("config")}, '
            f'options {record.get("cfg_options")}); now: config {run.config}, options '
            f'{run.cfg_options}. Use another --work-root, or delete the work dir to restart.'))
    if best_progress < run.max_steps:
        return RunState('partial', best, best_progress,
                        f'interrupted at {unit} {best_progress}/{run.max_steps}')
    metrics = in_root(run.metrics_file)
    if osp.isfile(metrics) and osp.getmtime(metrics) >= osp.getmtime(best):
        return RunState('done', best, best_progress, 'trained and evaluated')
    return RunState('trained', best, best_progress,
                    f'trained ({unit} {best_progress}), not evaluated')
