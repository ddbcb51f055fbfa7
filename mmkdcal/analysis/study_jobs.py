"""Run a study's independent trainings as parallel single-thread processes, resumably.

A study is a set of :class:`Job`: each runs one command of the project's tools
(``tools/train.py``, ``tools/test.py``, ...) in a subprocess with one torch thread, in its own
work dir, and reads its result from what the command wrote. Jobs wait for the jobs they depend
on; up to ``workers`` run at once (on a 2-core machine, two single-thread processes are faster
than one two-thread one, whose OpenMP threads stall each other when the machine is shared).

A finished job leaves ``<work_dir>/study_result.json`` with a *stamp*: a hash of its command,
the text of the config files its arguments name (with their ``_base_`` chain; not the tool's
own code) and the stamps of the jobs it depends on (:attr:`Job.stamp_deps`). A later run
reuses a result whose stamp matches and reruns the rest, so an interrupted study resumes, and
changing or adding one teacher reruns only what depends on it.
"""
import hashlib
import json
import os
import os.path as osp
import re
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence

__all__ = ['Job', 'JobFailed', 'config_chain', 'run_jobs']

RESULT_FILE = 'study_result.json'


class JobFailed(RuntimeError):
    """A job's command exited with an error; the message names the job and its log."""


@dataclass
class Job:
    """One command of a study.

    Args:
        name: Unique name (log file ``<logs>/<name>.log``).
        work_dir: The job's own folder (emptied before the command runs).
        command: ``deps_results -> argv`` (argv after ``python``, run from the repository root),
            or None to skip the job (its result is then ``{'skipped': True}``).
        collect: ``(job, deps_results) -> dict``: reads the result from what the command wrote.
        deps: Names of the jobs whose results ``command`` and ``collect`` need.
        priority: Larger runs first among the ready jobs (e.g. the long teacher trainings).
        meta: What the job is, for the study that reads its result (not used here).
        stamp_deps: The deps whose stamps enter this job's stamp (None: all of ``deps``). A
            job that reads other jobs only to decide *whether* it runs, not *what* it runs,
            leaves them out: a change there then reruns it only if its command changes.
    """
    name: str
    work_dir: str
    command: Callable[[Dict[str, Dict[str, Any]]], Optional[List[str]]]
    collect: Callable[['Job', Dict[str, Dict[str, Any]]], Dict[str, Any]]
    deps: Sequence[str] = field(default_factory=tuple)
    priority: int = 0
    meta: Dict[str, Any] = field(default_factory=dict)
    stamp_deps: Optional[Sequence[str]] = None

    def __post_init__(self) -> None:
        self.deps = tuple(self.deps)
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


def _stamp(argv: List[str], dep_stamps: List[str], root: str) -> str:
    h = hashlib.sha256('\x00'.join(argv).encode())
    for arg in argv[1:]:  # argv[0] is the tool: its code is not part of the stamp
        for piece in arg.split('='):
            path = osp.join(root, piece)
            if piece.endswith('.py') and osp.isfile(path):
                for p in config_chain(path):
                    with open(p, 'rb') as f:
                        h.update(f.read())
    for s in dep_stamps:
        h.update(s.encode())
    return h.hexdigest()[:20]


def _read_result(job: Job) -> Optional[Dict[str, Any]]:
    path = osp.join(job.work_dir, RESULT_FILE)
    if not osp.isfile(path):
        return None
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, json.JSONDecodeError):
        return None


def _execute(job: Job, deps: Dict[str, Dict[str, Any]], root: str, logs: str,
             retrain: bool, say: Callable[[str], None]) -> Dict[str, Any]:
    argv = job.command(deps)
    dep_stamps = [deps[d].get('_stamp', '') for d in
                  (job.deps if job.stamp_deps is None else job.stamp_deps)]
    if argv is None:
        return dict(skipped=True, _stamp=_stamp(['skip'], dep_stamps, root), _wall_s=0.0)
    stamp = _stamp(argv, dep_stamps, root)
    old = _read_result(job)
    if not retrain and old is not None and old.get('_stamp') == stamp:
        say(f'[{job.name}] reusing the finished run in {job.work_dir}')
        old['_reused'] = True
        return old
    if osp.isdir(job.work_dir):
        shutil.rmtree(job.work_dir)
    os.makedirs(job.work_dir)
    log_path = osp.join(logs, f'{job.name}.log')
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get('PYTHONPATH', ''),
               OMP_NUM_THREADS='1', MKL_NUM_THREADS='1', MPLBACKEND='Agg')
    say(f'[{job.name}] start: python {" ".join(argv[:2])} ... (log {log_path})')
    t0 = time.time()
    with open(log_path, 'w') as log:
        log.write('$ python ' + ' '.join(argv) + '\n')
        log.flush()
        proc = subprocess.run([sys.executable] + list(argv), cwd=root, env=env, stdout=log,
                              stderr=subprocess.STDOUT)
    wall = time.time() - t0
    if proc.returncode != 0:
        with open(log_path) as f:
            tail = f.read()[-3000:]
        raise JobFailed(f'{job.name} failed (exit {proc.returncode}) after {wall:.0f} s; '
                        f'log: {log_path}\n{tail}')
    result = job.collect(job, deps)
    result.update(_stamp=stamp, _wall_s=round(wall, 1), _reused=False)
    with open(osp.join(job.work_dir, RESULT_FILE), 'w') as f:
        json.dump(result, f, indent=1)
    say(f'[{job.name}] done in {wall:.0f} s')
    return result


def run_jobs(jobs: Sequence[Job], root: str, logs: str, workers: int = 2,
             retrain: bool = False, say: Callable[[str], None] = print
             ) -> Dict[str, Dict[str, Any]]:
    """Run ``jobs`` respecting their dependencies, ``workers`` at a time.

    Args:
        jobs: The jobs (names unique, dependencies among them, no cycles).
        root: Repository root (working directory of every command).
        logs: Folder of the per-job logs.
        workers: Processes running at once.
        retrain: Rerun every job even when a matching finished result exists.
        say: Progress printer (called from worker threads, serialised here).

    Returns:
        dict: job name -> result (the ``collect`` dict plus ``_stamp``, ``_wall_s`` (seconds
        of its command) and ``_reused``).

    Raises:
        JobFailed: The first failing job, after the running ones have finished.
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
    os.makedirs(logs, exist_ok=True)
    lock = threading.Lock()
    cond = threading.Condition(lock)
    results: Dict[str, Dict[str, Any]] = {}
    running: set = set()
    errors: List[BaseException] = []

    say_lock = threading.Lock()

    def locked_say(msg: str) -> None:
        with say_lock:
            say(msg)

    def worker(job: Job, deps: Dict[str, Dict[str, Any]]) -> None:
        try:
            res = _execute(job, deps, root, logs, retrain, locked_say)
        except BaseException as exc:  # noqa: BLE001 - re-raised by run_jobs
            with cond:
                errors.append(exc)
                running.discard(job.name)
                cond.notify_all()
            return
        with cond:
            results[job.name] = res
            running.discard(job.name)
            cond.notify_all()

    pending = sorted(jobs, key=lambda j: -j.priority)
    with cond:
        while pending or running:
            if errors and not running:
                break
            ready = [] if errors else [j for j in pending if all(d in results
                                                                 for d in j.deps)]
            while ready and len(running) < workers:
                job = ready.pop(0)
                pending.remove(job)
                running.add(job.name)
                deps = {d: results[d] for d in job.deps}
                threading.Thread(target=worker, args=(job, deps), daemon=True).start()
            if not running and pending and not errors:
                raise RuntimeError(f'Jobs {[j.name for j in pending]} can never start (a '
                                   'dependency cycle).')
            cond.wait(timeout=5.0)
    if errors:
        raise errors[0]
    return results
