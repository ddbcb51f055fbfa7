"""Read every run's work dir into one ``results.json``.

Per run: its state, the final checkpoint, the evaluation metrics (``test_metrics.json``), the
teacher temperature (checkpoint ``meta``, else the config's fixed value) and the calibration
report (``teacher_calibration.json``), the wall time of its training and evaluation attempts,
the devices it trained on (from MMEngine's environment log) and the git commit of the code.
Per config (``summary``): mean, sample standard deviation and values of every metric over the
evaluated seeds.
"""
import datetime
import json
import os
import os.path as osp
import re
import statistics
from typing import Any, Dict, List, Optional, Sequence

from .plan import Run, in_root, root_relative
from .state import inspect_run, read_record

__all__ = ['RESULTS_FORMAT', 'collect_results', 'parse_devices', 'summarize', 'write_results']

RESULTS_FORMAT = 1
_GPU = re.compile(r'^\s*GPU ([\d,]+): (.+?)\s*$')
_WORLD = re.compile(r'^\s*GPU number: (\d+)\s*$')
_CUDA = re.compile(r'^\s*CUDA available: (True|False)\s*$')


def parse_devices(log_paths: Sequence[str], cpu: Optional[str] = None) -> Dict[str, Any]:
    """The devices of a training run, from MMEngine's "System environment" log block.

    Args:
        log_paths: Training logs (the first block of each is read).
        cpu: CPU model to report when the log shows no GPU.

    Returns:
        ``dict(world_size=N, names=['8 x NVIDIA A100-SXM4-80GB'])`` (``names`` are the GPUs of
        the rank-0 node; ``['CPU: <model>']`` when CUDA was not available), or empty lists and
        None when no log holds the block.
    """
    gpus: Dict[str, int] = {}
    world, cuda = None, None
    for path in log_paths:
        if not osp.isfile(path):
            continue
        with open(path, errors='replace') as f:
            for line in f:
                m = _GPU.match(line)
                if m:
                    gpus[m.group(2)] = max(gpus.get(m.group(2), 0), len(m.group(1).split(',')))
                    continue
                m = _WORLD.match(line)
                if m:
                    world = int(m.group(1))
                    continue
                m = _CUDA.match(line)
                if m:
                    cuda = m.group(1) == 'True'
    if gpus:
        names = [f'{n} x {name}' for name, n in gpus.items()]
    elif cuda is False:
        names = [f'CPU: {cpu}' if cpu else 'CPU']
    else:
        names = []
    return dict(world_size=world, names=names)


def _attempt_seconds(attempt: dict) -> float:
    """Duration of one attempt; a killed one ends at its log's last write."""
    end = attempt.get('end')
    if end is None:
        log = in_root(attempt['log'])
        end = osp.getmtime(log) if osp.isfile(log) else attempt['start']
    return max(0.0, float(end) - float(attempt['start']))


def _temperature(run: Run, meta: Dict[str, Any]) -> Dict[str, Any]:
    if 'teacher_temperature' in meta:
        return dict(value=meta['teacher_temperature'],
                    source=meta.get('teacher_temperature_source', 'checkpoint'))
    if run.is_distiller and run.teacher_temperature is not None:
        return dict(value=run.teacher_temperature, source='config')
    return dict(value=None, source=None)


def _run_result(run: Run) -> Dict[str, Any]:
    state = inspect_run(run)
    work_dir = in_root(run.work_dir)
    res: Dict[str, Any] = dict(
        config=run.config, name=run.name, folder=run.folder, seed=run.seed,
        work_dir=run.work_dir, cfg_options=run.cfg_options,
        status='complete' if state.stage == 'done' else state.stage, state=state.message,
        checkpoint=root_relative(state.checkpoint) if state.checkpoint else None,
        metrics=None, teacher_temperature=dict(value=None, source=None),
        teacher_calibration=None, wall_time_s=None, devices=None, git=None)
    if state.stage == 'done':
        with open(in_root(run.metrics_file)) as f:
            res['metrics'] = json.load(f)
    if state.checkpoint:
        from mmkdcal.utils.checkpoint import load_checkpoint_file
        meta = load_checkpoint_file(state.checkpoint, map_location='cpu').get('meta', {}) or {}
        res['teacher_temperature'] = _temperature(run, meta)
        res['progress'] = {'epoch': meta.get('epoch'), 'iter': meta.get('iter')}
    cal = osp.join(work_dir, 'teacher_calibration.json')
    if osp.isfile(cal):
        with open(cal) as f:
            report = json.load(f)
        res['teacher_calibration'] = {k: report.get(k) for k in
                                      ('temperature', 'fit_on', 'objective', 'num_samples',
                                       'before', 'after')}
    record = read_record(work_dir)
    if record is not None:
        attempts = record.get('attempts', [])
        res['wall_time_s'] = {stage: round(sum(_attempt_seconds(a) for a in attempts
                                               if a['stage'] == stage), 1)
                              for stage in ('train', 'test')}
        res['attempts'] = [dict(stage=a['stage'], returncode=a.get('returncode'),
                                resume_from=a.get('resume_from'), log=a['log'],
                                launcher=a.get('launcher'))
                           for a in attempts]
        train = [a for a in attempts if a['stage'] == 'train']
        commits = list(dict.fromkeys((a.get('git') or {}).get('commit') for a in train))
        res['git'] = dict(commit=commits[-1] if commits else None, commits=commits,
                          dirty=any((a.get('git') or {}).get('dirty') for a in train))
        cpu = (train[-1].get('host') or {}).get('cpu') if train else None
        res['devices'] = parse_devices([in_root(a['log']) for a in train], cpu=cpu)
    return res


def _stats(values: List[float]) -> Dict[str, Any]:
    return dict(mean=statistics.fmean(values),
                std=statistics.stdev(values) if len(values) > 1 else None,
                n=len(values), values=values)


def _scalar_temperature(value: Any) -> Optional[float]:
    if value is None:
        return None
    if isinstance(value, (list, tuple)):  # per-class: their mean
        return statistics.fmean(float(v) for v in value)
    return float(value)


def summarize(runs: Sequence[Dict[str, Any]]) -> Dict[str, Dict[str, Any]]:
    """Per config name: the complete seeds, and mean/std/values of each numeric metric and of
    the teacher temperature over them (std is the sample standard deviation, None for 1 seed).
    """
    out: Dict[str, Dict[str, Any]] = {}
    for r in runs:
        if r['status'] != 'complete':
            continue
        entry = out.setdefault(r['name'], dict(config=r['config'], folder=r['folder'], seeds=[],
                                               metrics={}, teacher_temperature=None,
                                               temperature_source=None, _t=[], _m={}))
        entry['seeds'].append(r['seed'])
        for k, v in (r['metrics'] or {}).items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                entry['_m'].setdefault(k, []).append(float(v))
        t = _scalar_temperature(r['teacher_temperature']['value'])
        if t is not None:
            entry['_t'].append(t)
            entry['temperature_source'] = r['teacher_temperature']['source']
    for entry in out.values():
        entry['metrics'] = {k: _stats(v) for k, v in entry.pop('_m').items()}
        ts = entry.pop('_t')
        entry['teacher_temperature'] = _stats(ts) if ts else None
    return out


def collect_results(runs: Sequence[Run]) -> Dict[str, Any]:
    """``results.json`` content for the plan's runs (see the module docstring)."""
    results = [_run_result(r) for r in runs]
    return dict(format=RESULTS_FORMAT,
                created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
                runs=results, summary=summarize(results))


def write_results(results: Dict[str, Any], path: str) -> None:
    """Write ``results`` as JSON to ``path``."""
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(path, 'w') as f:
        json.dump(results, f, indent=2)
