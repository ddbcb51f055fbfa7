"""Execute a benchmark plan: train and evaluate every run, resuming, one failure isolated.

For each run, the state of its work dir (:func:`~tools.harness.matrix.state.inspect_run`) decides:
``done`` runs are skipped, ``partial`` ones continue with ``--resume <furthest checkpoint>``,
``new`` ones start, ``trained`` ones are only evaluated. Every command's output goes to
``<work_dir>/benchmark_logs/<stage>_<attempt>.log``; training progress and the final metrics
are echoed with the run's name. A failed run is reported and the next one starts; the summary
lists the failures. SIGINT/SIGTERM stop the running commands and end with the summary; the
next ``run`` resumes where they stopped.
"""
import os
import os.path as osp
import platform
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

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
    cpu = platform.processor() or None
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    cpu = line.split(':', 1)[1].strip()
                    break
    except OSError:
        pass
    return dict(host=socket.gethostname(), cpu=cpu, cpu_count=str(os.cpu_count()))


class _Executor:

    def __init__(self, runs: Sequence[Run], launcher: Launcher, jobs: int, say: Callable,
                 env: Optional[Dict[str, str]]):
        self.runs, self.launcher, self.jobs, self.say_fn = list(runs), launcher, jobs, say
        self.env = dict(os.environ if env is None else env)
        self.env['PYTHONPATH'] = ROOT + (os.pathsep + self.env['PYTHONPATH']
                                         if self.env.get('PYTHONPATH') else '')
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.procs: Dict[int, subprocess.Popen] = {}
        self.outcomes: List[Optional[Outcome]] = [None] * len(self.runs)
        self.next_index = 0

    def say(self, msg: str) -> None:
        with self.lock:
            self.say_fn(msg)

    # ------------------------------------------------------------------ one command
    def attempt(self, slot: int, run: Run, record: dict, stage: str, cmd: Command,
                resume_from: Optional[str] = None) -> Tuple[int, str]:
        number = sum(1 for a in record['attempts'] if a['stage'] == stage) + 1
        log_path = osp.join(run.work_dir, LOG_DIR, f'{stage}_{number}.log')
        os.makedirs(osp.dirname(in_root(log_path)), exist_ok=True)
        entry = dict(stage=stage, command=cmd.shell(), start=time.time(), end=None,
                     returncode=None, log=log_path, resume_from=resume_from, git=git_info(),
                     host=host_info(), launcher=self.launcher.kind)
        record['attempts'].append(entry)
        write_record(in_root(run.work_dir), record)
        argv = [sys.executable if a == 'python' and i == 0 else a for i, a in enumerate(cmd.argv)]
        env = dict(self.env, **cmd.env)
        if self.launcher.kind == 'dist' and self.jobs > 1:
            env['PORT'] = str(int(self.env.get('PORT', 29500)) + slot)
        tag = f'[{run.key}]'
        with open(in_root(log_path), 'w') as log:
            log.write(f'$ {cmd.shell()}\n')
            log.flush()
            proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True, bufsize=1)
            with self.lock:
                self.procs[proc.pid] = proc
            try:
                for line in proc.stdout:
                    log.write(line)
                    log.flush()
                    msg = line.split(' - mmengine - INFO - ')[-1].rstrip()
                    if any(k in line for k in _PROGRESS) or (
                            any(k in line for k in _EVAL) and '/' in msg and ':' in msg
                            and ('coco/' in msg or 'accuracy' in msg or 'calib/' in msg)):
                        self.say(f'{tag}   {msg[:160]}')
                rc = proc.wait()
            finally:
                with self.lock:
                    self.procs.pop(proc.pid, None)
        entry.update(end=time.time(), returncode=rc)
        write_record(in_root(run.work_dir), record)
        return rc, log_path

    def _tail(self, log_path: str, n: int = 15) -> str:
        with open(in_root(log_path)) as f:
            lines = f.read().splitlines()
        return '\n'.join('      ' + ln for ln in lines[-n:])

    # ------------------------------------------------------------------ one run
    def one(self, slot: int, index: int) -> Outcome:
        run = self.runs[index]
        head = f'[{index + 1}/{len(self.runs)}] {run.key}'
        state = inspect_run(run)
        if state.stage == 'conflict':
            self.say(f'{head}: FAILED: {state.message}')
            return Outcome(run, 'failed', state.message)
        if state.stage == 'done':
            self.say(f'{head}: already finished ({osp.basename(state.checkpoint)} and '
                     f'{osp.basename(run.metrics_file)}), skipped')
            return Outcome(run, 'skipped', 'already finished')
        record = read_record(in_root(run.work_dir))
        if record is None or not same_settings(record, run):  # (no checkpoint: start over)
            record = dict(config=run.config, seed=run.seed, cfg_options=run.cfg_options,
                          work_dir=run.work_dir, attempts=[])
        if state.stage in ('new', 'partial'):
            resume = root_relative(state.checkpoint) if state.stage == 'partial' else None
            self.say(f'{head}: ' + (f'{state.message}, resuming from {resume}' if resume
                                    else f'training in {run.work_dir}'))
            rc, log = self.attempt(slot, run, record, 'train',
                                   train_command(run, self.launcher, resume), resume)
            if self.stop.is_set():
                return Outcome(run, 'interrupted', 'stopped during training', log)
            if rc != 0:
                self.say(f'{head}: FAILED: training exited with {rc} (log: {log})\n'
                         + self._tail(log))
                return Outcome(run, 'failed', f'training exited with {rc}', log)
            state = inspect_run(run)
            if state.stage not in ('trained', 'done'):
                msg = (f'training exited with 0 but the work dir has no final checkpoint '
                       f'({state.message})')
                self.say(f'{head}: FAILED: {msg} (log: {log})')
                return Outcome(run, 'failed', msg, log)
        checkpoint = root_relative(state.checkpoint)
        self.say(f'{head}: evaluating {checkpoint}')
        rc, log = self.attempt(slot, run, record, 'test',
                               test_command(run, self.launcher, checkpoint))
        if self.stop.is_set():
            return Outcome(run, 'interrupted', 'stopped during evaluation', log)
        if rc != 0 or not osp.isfile(in_root(run.metrics_file)):
            msg = f'evaluation exited with {rc}' if rc else \
                f'evaluation wrote no {run.metrics_file}'
            self.say(f'{head}: FAILED: {msg} (log: {log})\n' + self._tail(log))
            return Outcome(run, 'failed', msg, log)
        self.say(f'{head}: done ({run.metrics_file})')
        return Outcome(run, 'done', run.metrics_file, log)

    # ------------------------------------------------------------------ all runs
    def worker(self, slot: int) -> None:
        while not self.stop.is_set():
            with self.lock:
                index = self.next_index
                self.next_index += 1
            if index >= len(self.runs):
                return
            try:
                self.outcomes[index] = self.one(slot, index)
            except Exception as exc:  # noqa: BLE001 - one run's error must not stop the rest
                self.say(f'[{index + 1}/{len(self.runs)}] {self.runs[index].key}: FAILED: '
                         f'{type(exc).__name__}: {exc}')
                self.outcomes[index] = Outcome(self.runs[index], 'failed',
                                               f'{type(exc).__name__}: {exc}')

    def interrupt(self, signum, frame) -> None:
        self.stop.set()
        with self.lock:
            procs = list(self.procs.values())
        for proc in procs:
            try:
                proc.send_signal(signum)
            except ProcessLookupError:
                pass

    def __call__(self) -> List[Outcome]:
        handlers = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                handlers[sig] = signal.signal(sig, self.interrupt)
        try:
            threads = [threading.Thread(target=self.worker, args=(slot,), daemon=True)
                       for slot in range(max(1, min(self.jobs, len(self.runs))))]
            for t in threads:
                t.start()
            while any(t.is_alive() for t in threads):
                for t in threads:
                    t.join(timeout=0.5)
        finally:
            for sig, handler in handlers.items():
                signal.signal(sig, handler)
        return [o or Outcome(r, 'interrupted', 'not started')
                for o, r in zip(self.outcomes, self.runs)]


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
    return _Executor(runs, launcher, jobs, say, env)()


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
