"""The one job runner of the tools: commands in subprocesses, resumable, in parallel slots.

The demo (``tools/demo.py``), the benchmark matrix (``tools/benchmark.py``) and the studies of
``projects/`` all run the project's command-line tools this way. A :class:`Job` runs either

- one command (``command`` + ``collect``): ``python <argv>`` from the repository root, in its
  own work dir (emptied first), with ``threads`` torch threads; its result is read back from
  what the command wrote. A finished job leaves ``<work_dir>/job_result.json`` with a *stamp*:
  a hash of its command, of the text of the config files its arguments name (with their
  ``_base_`` chain; not the tool's own code) and of the stamps of the jobs it depends on
  (:attr:`Job.stamp_deps`). A later run reuses a result whose stamp matches and reruns the rest,
  so an interrupted run resumes, and a change reruns only what depends on it; or
- its own steps (``run``): a function that runs its commands through
  :meth:`JobContext.command` and decides itself what is already done (the benchmark matrix,
  whose trainings resume from their checkpoints).

Jobs wait for the jobs they depend on; up to ``workers`` run at once, the ready ones by
``priority`` and then in list order (on a shared 2-core machine two single-thread processes are
faster than one two-thread one, whose OpenMP threads stall each other). Each command's output
goes to its log; the lines a job's ``echo`` picks are shown tagged with the job's name. With
``progress``, every finished job counts towards an ETA line. A failure stops new jobs from
starting; when the running ones have ended, :class:`JobFailed` lists every failed job and its
log. SIGINT/SIGTERM (in the main thread) stop the running commands and start nothing more.
"""
import hashlib
import json
import os
import os.path as osp
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence

from mmkdcal.utils.progress import EtaProgress

__all__ = ['Job', 'JobContext', 'JobFailed', 'JobsInterrupted', 'RESULT_FILE', 'command_env',
           'config_chain', 'job_stamp', 'run_command', 'run_jobs']

#: A finished command job's result and stamp, in its work dir.
RESULT_FILE = 'job_result.json'

Deps = Dict[str, Dict[str, Any]]


class JobFailed(RuntimeError):
    """One or more jobs failed; the message names each one and its log.

    Args:
        message: What failed.
        failures: Job name -> what happened to it.
        results: The results of the jobs that finished.
    """

    def __init__(self, message: str, failures: Optional[Dict[str, str]] = None,
                 results: Optional[Dict[str, Any]] = None) -> None:
        super().__init__(message)
        self.failures = dict(failures or {})
        self.results = dict(results or {})


class JobsInterrupted(JobFailed):
    """A signal stopped the jobs; ``results`` holds those that had finished."""


@dataclass
class Job:
    """One job: a command with a resumable result, or a function that runs its own commands.

    Args:
        name: Unique name (log file ``<logs>/<name>.log``, the tag of its output lines).
        work_dir: The job's own folder (a command job's is emptied before its command runs).
        command: ``deps_results -> argv`` (argv after ``python``, run from the repository root),
            or None to skip the job (its result is then ``{'skipped': True}``).
        collect: ``(job, deps_results) -> dict``: reads the result from what the command wrote.
        deps: Names of the jobs whose results ``command`` and ``collect`` need.
        priority: Larger runs first among the ready jobs (e.g. the long teacher trainings).
        meta: What the job is, for whoever reads its result (not used here).
        stamp_deps: The deps whose stamps enter this job's stamp (None: all of ``deps``). A
            job that reads other jobs only to decide *whether* it runs, not *what* it runs,
            leaves them out: a change there then reruns it only if its command changes.
        threads: Torch (OpenMP/MKL) threads of its command.
        echo: ``line -> text or None``: which lines of the command's output are shown (None:
            none).
        reusable: ``result -> bool``: whether a finished result with a matching stamp may be
            reused (e.g. its checkpoint still exists); default: always.
        run: Instead of ``command``/``collect``: ``context -> result``, a job that runs its
            commands with :meth:`JobContext.command` (no stamp; it decides what is done).
    """
    name: str
    work_dir: str
    command: Optional[Callable[[Deps], Optional[List[str]]]] = None
    collect: Optional[Callable[['Job', Deps], Dict[str, Any]]] = None
    deps: Sequence[str] = field(default_factory=tuple)
    priority: int = 0
    meta: Dict[str, Any] = field(default_factory=dict)
    stamp_deps: Optional[Sequence[str]] = None
    threads: int = 1
    echo: Optional[Callable[[str], Optional[str]]] = None
    reusable: Optional[Callable[[Dict[str, Any]], bool]] = None
    run: Optional[Callable[['JobContext'], Any]] = None

    def __post_init__(self) -> None:
        self.deps = tuple(self.deps)
        if (self.run is None) == (self.command is None or self.collect is None):
            raise ValueError(f'Job {self.name}: give either `command` and `collect`, or `run`.')
        if self.stamp_deps is not None:
            self.stamp_deps = tuple(self.stamp_deps)
            extra = sorted(set(self.stamp_deps) - set(self.deps))
            if extra:
                raise ValueError(f'Job {self.name}: `stamp_deps` must be a subset of `deps`; '
                                 f'{extra} are not deps.')


_BASE_RE = re.compile(r"^_base_\s*=\s*(\[[^\]]*\]|'[^']*'|\"[^\"]*\")", re.M)


def config_chain(path: str) -> List[str]:
    """A config file and the files of its ``_base_`` chain (relative ``_base_`` entries).

    Args:
        path: A ``.py`` config file.

    Returns:
        list[str]: Absolute paths, the file first; ``mmdet::`` bases are not followed.
    """
    out, todo = [], [osp.abspath(path)]
    while todo:
        p = todo.pop(0)
        if p in out or not osp.isfile(p):
            continue
        out.append(p)
        with open(p) as f:
            m = _BASE_RE.search(f.read())
        if m:
            for base in re.findall(r"['\"]([^'\"]+)['\"]", m.group(1)):
                if '::' not in base:
                    todo.append(osp.normpath(osp.join(osp.dirname(p), base)))
    return out


def job_stamp(argv: Sequence[str], dep_stamps: Sequence[str], root: str) -> str:
    """The stamp of a command: its argv, the config files it names, the deps' stamps.

    Args:
        argv: The command after ``python`` (``argv[0]``, the tool, enters by name only).
        dep_stamps: The stamps of the jobs whose results it uses.
        root: Where relative paths in ``argv`` start.

    Returns:
        str: 20 hex digits.
    """
    h = hashlib.sha256('\x00'.join(argv).encode())
    for arg in argv[1:]:
        for piece in arg.split('='):
            path = osp.join(root, piece)
            if piece.endswith('.py') and osp.isfile(path):
                for p in config_chain(path):
                    with open(p, 'rb') as f:
                        h.update(f.read())
    for s in dep_stamps:
        h.update(s.encode())
    return h.hexdigest()[:20]


def command_env(root: str, threads: Optional[int] = None,
                base: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """The environment of a command: ``root`` first on ``PYTHONPATH``, the thread count.

    Args:
        root: The repository root.
        threads: OpenMP/MKL threads (None: as inherited).
        base: The environment to start from (default: this process's).
    """
    env = dict(os.environ if base is None else base)
    env['PYTHONPATH'] = root + (os.pathsep + env['PYTHONPATH'] if env.get('PYTHONPATH') else '')
    env['MPLBACKEND'] = 'Agg'  # commands draw figures into files only
    if threads is not None:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    return env


def run_command(argv: Sequence[str], log_path: str, cwd: str, env: Dict[str, str],
                on_line: Optional[Callable[[str], None]] = None, header: Optional[str] = None,
                started: Optional[Callable[[subprocess.Popen], None]] = None) -> int:
    """Run ``argv``; its output (stdout and stderr) goes to ``log_path`` and, line by line, to
    ``on_line``.

    Args:
        argv: The command (``argv[0]`` the program).
        log_path: The log file (its folder is created).
        cwd: Working directory.
        env: Environment.
        on_line: Called with every output line.
        header: First line of the log (default ``$ <argv>``).
        started: Called with the process once it runs (to stop it on a signal).

    Returns:
        int: The exit code.
    """
    os.makedirs(osp.dirname(osp.abspath(log_path)), exist_ok=True)
    with open(log_path, 'w') as log:
        log.write((header or '$ ' + ' '.join(argv)) + '\n')
        log.flush()
        proc = subprocess.Popen(list(argv), cwd=cwd, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, bufsize=1)
        if started is not None:
            started(proc)
        for line in proc.stdout:
            log.write(line)
            log.flush()
            if on_line is not None:
                on_line(line)
        return proc.wait()


def _tail(path: str, chars: int = 3000) -> str:
    try:
        with open(path) as f:
            return f.read()[-chars:]
    except OSError:
        return ''


class JobContext:
    """What a running job sees: its slot, its deps' results and a way to run commands.

    Args:
        job: The job.
        slot: Which of the ``workers`` slots runs it (0-based; e.g. for a port per slot).
        deps: The results of its deps.
        runner: The run it belongs to.
    """

    def __init__(self, job: Job, slot: int, deps: Deps, runner: '_Runner') -> None:
        self.job, self.slot, self.deps, self._runner = job, slot, deps, runner
        self.root = runner.root

    @property
    def stopped(self) -> bool:
        """Whether a signal has stopped the run."""
        return self._runner.stop.is_set()

    def say(self, msg: str) -> None:
        """Print ``msg`` (serialised with the other jobs' output)."""
        self._runner.say(msg)

    def command(self, argv: Sequence[str], log_path: str, env: Optional[Dict[str, str]] = None,
                header: Optional[str] = None) -> int:
        """Run ``argv`` from the repository root (see :func:`run_command`); the lines the job's
        ``echo`` picks are shown as ``[<job name>]   <text>``.

        Args:
            argv: The command; ``'python'`` first means this interpreter.
            log_path: Its log.
            env: Environment (default: :func:`command_env` with the job's threads).
            header: First line of the log.

        Returns:
            int: The exit code (nonzero also when the run was stopped before it started).
        """
        if self.stopped:
            return -signal.SIGINT
        argv = [sys.executable if i == 0 and a == 'python' else a for i, a in enumerate(argv)]
        echo, tag = self.job.echo, f'[{self.job.name}]'

        def on_line(line: str) -> None:
            text = echo(line)
            if text is not None:
                self.say(f'{tag}   {text}')

        runner, mine = self._runner, []

        def started(proc: subprocess.Popen) -> None:
            mine.append(proc)
            with runner.lock:
                runner.procs.add(proc)

        try:
            return run_command(
                argv, log_path, self.root,
                env if env is not None else command_env(self.root, self.job.threads),
                on_line=on_line if echo is not None else None, header=header, started=started)
        finally:
            with runner.lock:
                runner.procs.difference_update(mine)


class _Runner:

    def __init__(self, root: str, logs: Optional[str], retrain: bool, say: Callable[[str], None]):
        self.root, self.logs, self.retrain = root, logs, retrain
        self._say, self._say_lock = say, threading.Lock()
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.procs: set = set()

    def say(self, msg: str) -> None:
        with self._say_lock:
            self._say(msg)

    def interrupt(self, signum, frame) -> None:
        self.stop.set()
        with self.lock:
            procs = list(self.procs)
        for proc in procs:
            try:
                proc.send_signal(signum)
            except ProcessLookupError:
                pass

    def execute(self, job: Job, slot: int, deps: Deps) -> Any:
        ctx = JobContext(job, slot, deps, self)
        if job.run is not None:
            return job.run(ctx)
        argv = job.command(deps)
        dep_stamps = [deps[d].get('_stamp', '') for d in
                      (job.deps if job.stamp_deps is None else job.stamp_deps)]
        if argv is None:
            return dict(skipped=True, _stamp=job_stamp(['skip'], dep_stamps, self.root),
                        _wall_s=0.0)
        stamp = job_stamp(argv, dep_stamps, self.root)
        old = _read_result(job.work_dir)
        if (not self.retrain and old is not None and old.get('_stamp') == stamp
                and (job.reusable is None or job.reusable(old))):
            self.say(f'[{job.name}] reusing the finished run in {job.work_dir}')
            old['_reused'] = True
            return old
        if osp.isdir(job.work_dir):
            shutil.rmtree(job.work_dir)
        os.makedirs(job.work_dir)
        log_path = osp.join(self.logs, f'{job.name}.log')
        self.say(f'[{job.name}] $ python {" ".join(argv[:2])} ... (log: {log_path})')
        t0 = time.time()
        rc = ctx.command(['python', *argv], log_path, header='$ python ' + ' '.join(argv))
        wall = time.time() - t0
        if rc != 0:
            raise JobFailed(f'{job.name} failed (exit {rc}) after {wall:.0f} s; log: '
                            f'{log_path}\n{_tail(log_path)}')
        result = job.collect(job, deps)
        result.update(_stamp=stamp, _wall_s=round(wall, 1), _reused=False)
        with open(osp.join(job.work_dir, RESULT_FILE), 'w') as f:
            json.dump(result, f, indent=1)
        self.say(f'[{job.name}] done in {wall:.0f} s')
        return result


def _read_result(work_dir: str) -> Optional[Dict[str, Any]]:
    path = osp.join(work_dir, RESULT_FILE)
    if not osp.isfile(path):
        return None
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, json.JSONDecodeError):
        return None


def run_jobs(jobs: Sequence[Job], root: str, logs: Optional[str], workers: int = 2,
             retrain: bool = False, say: Callable[[str], None] = print,
             progress: Optional[str] = None) -> Dict[str, Any]:
    """Run ``jobs`` respecting their dependencies, ``workers`` at a time.

    Args:
        jobs: The jobs (names unique, dependencies among them, no cycles).
        root: Repository root (working directory of every command).
        logs: Folder of the command jobs' logs (None: only ``run`` jobs, which keep their own).
        workers: Jobs running at once.
        retrain: Rerun every command job even when a matching finished result exists.
        say: Progress printer (called from worker threads, serialised here).
        progress: Name of an ETA line counting finished jobs (None: no such line).

    Returns:
        dict: job name -> result (a command job's: the ``collect`` dict plus ``_stamp``,
        ``_wall_s`` (seconds of its command) and ``_reused``; a ``run`` job's: what it returned).

    Raises:
        JobFailed: Jobs failed (listed), after the running ones have finished.
        JobsInterrupted: A signal stopped the run.
    """
    if workers < 1:
        raise ValueError(f'`workers` must be >= 1, got {workers}.')
    by_name = {j.name: j for j in jobs}
    if len(by_name) != len(jobs):
        raise ValueError('Job names must be unique.')
    for j in jobs:
        unknown = [d for d in j.deps if d not in by_name]
        if unknown:
            raise ValueError(f'Job {j.name} depends on unknown jobs {unknown}.')
    if logs is None and any(j.run is None for j in jobs):
        raise ValueError('Command jobs need a `logs` folder.')
    if logs is not None:
        os.makedirs(logs, exist_ok=True)
    runner = _Runner(root, logs, retrain, say)
    eta = EtaProgress(len(jobs), progress, log=runner.say) if progress and jobs else None
    cond = threading.Condition()
    results: Dict[str, Any] = {}
    failures: Dict[str, str] = {}
    running: Dict[str, int] = {}  # name -> slot

    def worker(job: Job, slot: int, deps: Deps) -> None:
        try:
            res, failed = runner.execute(job, slot, deps), None
        except BaseException as exc:  # noqa: BLE001 - listed by run_jobs
            res, failed = None, str(exc) if isinstance(exc, JobFailed) else \
                f'{job.name}: {type(exc).__name__}: {exc}'
        with cond:
            if failed is None:
                results[job.name] = res
            else:
                failures[job.name] = failed
            del running[job.name]
            if eta is not None and failed is None:  # (under the lock: one count at a time)
                reused = isinstance(res, dict) and res.get('_reused')
                eta.update(note=f'jobs done ({job.name}{", reused" if reused else ""})',
                           force=True)
            cond.notify_all()

    handlers = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            handlers[sig] = signal.signal(sig, runner.interrupt)
    pending = sorted(jobs, key=lambda j: -j.priority)
    try:
        with cond:
            while pending or running:
                blocked = bool(failures) or runner.stop.is_set()
                ready = [] if blocked else [j for j in pending
                                            if all(d in results for d in j.deps)]
                free = [s for s in range(workers) if s not in running.values()]
                while ready and free:
                    job = ready.pop(0)
                    pending.remove(job)
                    running[job.name] = slot = free.pop(0)
                    deps = {d: results[d] for d in job.deps}
                    threading.Thread(target=worker, args=(job, slot, deps), daemon=True).start()
                if not running:
                    if pending and not blocked:
                        raise RuntimeError(f'Jobs {[j.name for j in pending]} can never start '
                                           '(a dependency cycle).')
                    if blocked:
                        break
                cond.wait(timeout=0.5)
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    if runner.stop.is_set():
        raise JobsInterrupted(f'stopped by a signal; not finished: '
                              f'{[j.name for j in jobs if j.name not in results]}',
                              failures, results)
    if failures:
        first = next(iter(failures.values()))
        names = ', '.join(failures)
        raise JobFailed(f'{len(failures)} job(s) failed ({names}); the first: {first}',
                        failures, results)
    return results
