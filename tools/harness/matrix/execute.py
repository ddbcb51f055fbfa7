"""Execute a benchmark plan: train and evaluate every run, resuming, one failure isolated.

Each run is one job of the tools' job runner (:mod:`tools.harness.jobs`: slots, signals). The
state of its work dir (:func:`~.state.inspect_run`) decides: ``done`` runs are skipped,
``partial`` ones continue with ``--resume <furthest checkpoint>``, ``new`` ones start,
``trained`` ones are only evaluated. Every command's output goes to
``<work_dir>/benchmark_logs/<stage>_<attempt>.log``; training progress and the final metrics
are echoed with the run's name. A failed run is reported and the next one starts; the summary
lists the failures. SIGINT/SIGTERM stop the running commands and end with the summary; the
next ``run`` resumes where they stopped.
"""
import os
import os.path as osp
import socket
import subprocess
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from tools.harness.machine import cpu_model

from ..jobs import Job, JobContext, JobsInterrupted, command_env, run_jobs
from .plan import (ROOT, Command, Launcher, Run, in_root, missing_scripts, root_relative,
                   test_command, train_command)
from .state import LOG_DIR, inspect_run, read_record, same_settings, write_record

__all__ = ['Outcome', 'execute_plan', 'git_info', 'host_info', 'print_summary']

_PROGRESS = ('Epoch(train)', 'Iter(train)', 'Teacher calibration', 'resumed', 'Calibrating')
_EVAL = ('Epoch(val)', 'Iter(val)', 'Epoch(test)', 'Iter(test)')


@dataclass
class Outcome:
    """What happened to one run: ``status`` is ``'done'``, ``'skipped'`` (already finished),
    ``'failed'`` or ``'interrupted'``."""

    run: Run
    status: str
    detail: str = ''
    log: Optional[str] = None


def git_info(root: str = ROOT) -> Dict[str, Optional[object]]:
    """``dict(commit=..., dirty=...)`` of the checkout at ``root`` (None when not a git tree)."""
    try:
        commit = subprocess.run(['git', '-C', root, 'rev-parse', 'HEAD'], capture_output=True,
                                text=True, check=True).stdout.strip()
        status = subprocess.run(['git', '-C', root, 'status', '--porcelain',
                                 '--untracked-files=no'], capture_output=True, text=True,
                                check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return dict(commit=None, dirty=None)
    return dict(commit=commit, dirty=bool(status))


def host_info() -> Dict[str, Optional[str]]:
    """Host name and CPU model of the machine that starts the commands."""
    return dict(host=socket.gethostname(), cpu=cpu_model() or None,
                cpu_count=str(os.cpu_count()))


def _echo(line: str) -> Optional[str]:
    """The lines of a command's output shown with the run's name: training progress and the
    final metrics."""
    msg = line.split(' - mmengine - INFO - ')[-1].rstrip()
    if any(k in line for k in _PROGRESS) or (
            any(k in line for k in _EVAL) and '/' in msg and ':' in msg
            and ('coco/' in msg or 'accuracy' in msg or 'calib/' in msg)):
        return msg[:160]
    return None


def _tail(log_path: str, n: int = 15) -> str:
    with open(in_root(log_path)) as f:
        lines = f.read().splitlines()
    return '\n'.join('      ' + ln for ln in lines[-n:])


class _RunJob:
    """One run of the plan as a job of the runner: train (or resume) if needed, then evaluate."""

    def __init__(self, index: int, total: int, run: Run, launcher: Launcher, jobs: int,
                 env: Dict[str, str]) -> None:
        self.index, self.total, self.run, self.launcher = index, total, run, launcher
        self.jobs, self.env = jobs, env

    def attempt(self, ctx: JobContext, record: dict, stage: str, cmd: Command,
                resume_from: Optional[str] = None) -> Tuple[int, str]:
        run = self.run
        number = sum(1 for a in record['attempts'] if a['stage'] == stage) + 1
        log_path = osp.join(run.work_dir, LOG_DIR, f'{stage}_{number}.log')
        entry = dict(stage=stage, command=cmd.shell(), start=time.time(), end=None,
                     returncode=None, log=log_path, resume_from=resume_from, git=git_info(),
                     host=host_info(), launcher=self.launcher.kind)
        record['attempts'].append(entry)
        write_record(in_root(run.work_dir), record)
        env = dict(self.env, **cmd.env)
        if self.launcher.kind == 'dist' and self.jobs > 1:
            env['PORT'] = str(int(self.env.get('PORT', 29500)) + ctx.slot)
        rc = ctx.command(cmd.argv, in_root(log_path), env=env, header=f'$ {cmd.shell()}')
        entry.update(end=time.time(), returncode=rc)
        write_record(in_root(run.work_dir), record)
        return rc, log_path

    def __call__(self, ctx: JobContext) -> Outcome:
        try:
            return self.stages(ctx)
        except Exception as exc:  # noqa: BLE001 - one run's error must not stop the rest
            ctx.say(f'[{self.index + 1}/{self.total}] {self.run.key}: FAILED: '
                    f'{type(exc).__name__}: {exc}')
            return Outcome(self.run, 'failed', f'{type(exc).__name__}: {exc}')

    def stages(self, ctx: JobContext) -> Outcome:
        run, say = self.run, ctx.say
        head = f'[{self.index + 1}/{self.total}] {run.key}'
        state = inspect_run(run)
        if state.stage == 'conflict':
            say(f'{head}: FAILED: {state.message}')
            return Outcome(run, 'failed', state.message)
        if state.stage == 'done':
            say(f'{head}: already finished ({osp.basename(state.checkpoint)} and '
                f'{osp.basename(run.metrics_file)}), skipped')
            return Outcome(run, 'skipped', 'already finished')
        record = read_record(in_root(run.work_dir))
        if record is None or not same_settings(record, run):  # (no checkpoint: start over)
            record = dict(config=run.config, seed=run.seed, cfg_options=run.cfg_options,
                          work_dir=run.work_dir, attempts=[])
        if state.stage in ('new', 'partial'):
            resume = root_relative(state.checkpoint) if state.stage == 'partial' else None
            say(f'{head}: ' + (f'{state.message}, resuming from {resume}' if resume
                               else f'training in {run.work_dir}'))
            rc, log = self.attempt(ctx, record, 'train',
                                   train_command(run, self.launcher, resume), resume)
            if ctx.stopped:
                return Outcome(run, 'interrupted', 'stopped during training', log)
            if rc != 0:
                say(f'{head}: FAILED: training exited with {rc} (log: {log})\n' + _tail(log))
                return Outcome(run, 'failed', f'training exited with {rc}', log)
            state = inspect_run(run)
            if state.stage not in ('trained', 'done'):
                msg = (f'training exited with 0 but the work dir has no final checkpoint '
                       f'({state.message})')
                say(f'{head}: FAILED: {msg} (log: {log})')
                return Outcome(run, 'failed', msg, log)
        checkpoint = root_relative(state.checkpoint)
        say(f'{head}: evaluating {checkpoint}')
        rc, log = self.attempt(ctx, record, 'test', test_command(run, self.launcher, checkpoint))
        if ctx.stopped:
            return Outcome(run, 'interrupted', 'stopped during evaluation', log)
        if rc != 0 or not osp.isfile(in_root(run.metrics_file)):
            msg = f'evaluation exited with {rc}' if rc else \
                f'evaluation wrote no {run.metrics_file}'
            say(f'{head}: FAILED: {msg} (log: {log})\n' + _tail(log))
            return Outcome(run, 'failed', msg, log)
        say(f'{head}: done ({run.metrics_file})')
        return Outcome(run, 'done', run.metrics_file, log)


def execute_plan(runs: Sequence[Run], launcher: Launcher, jobs: int = 1,
                 say: Callable[[str], None] = print,
                 env: Optional[Dict[str, str]] = None) -> List[Outcome]:
    """Train and evaluate every run of the plan (see the module docstring).

    Args:
        runs: The plan.
        launcher: How commands start.
        jobs: Runs executed at the same time (each drives its own command; with ``dist`` each
            gets its own ``PORT``).
        say: Where progress goes.
        env: Environment of the commands (default: this process's).

    Returns:
        One :class:`Outcome` per run, in plan order.
    """
    missing = missing_scripts(launcher)
    if missing:
        raise FileNotFoundError(f'--launcher {launcher.kind} needs {missing}, which this checkout '
                                'lacks. Use --launcher python or dist, or add the scripts.')
    if jobs < 1:
        raise ValueError(f'--jobs must be >= 1, got {jobs}.')
    env = command_env(ROOT, base=dict(os.environ if env is None else env))
    runs = list(runs)
    tasks = [Job(run.key, run.work_dir, run=_RunJob(i, len(runs), run, launcher, jobs, env),
                 echo=_echo) for i, run in enumerate(runs)]
    try:
        results = run_jobs(tasks, ROOT, None, workers=max(1, min(jobs, len(runs))), say=say)
    except JobsInterrupted as stop:
        results = stop.results
    return [results.get(run.key) or Outcome(run, 'interrupted', 'not started') for run in runs]


def print_summary(outcomes: Sequence[Outcome], say: Callable[[str], None] = print) -> bool:
    """Print the summary (counts, then every failed or interrupted run); True if all finished."""
    counts = {s: sum(o.status == s for o in outcomes)
              for s in ('done', 'skipped', 'failed', 'interrupted')}
    say(f'== benchmark summary: {len(outcomes)} runs: {counts["done"]} done, '
        f'{counts["skipped"]} skipped (already finished), {counts["failed"]} failed, '
        f'{counts["interrupted"]} interrupted')
    for o in outcomes:
        if o.status in ('failed', 'interrupted'):
            say(f'  {o.status.upper()}: {o.run.key} ({o.run.config}): {o.detail}'
                + (f' (log: {o.log})' if o.log else ''))
    return counts['failed'] == 0 and counts['interrupted'] == 0
