"""Ours against a peer with each candidate alone in its own process, the steps interleaved.

In the shared comparison (``peer_compare.run_comparison``) every candidate lives in one process
and so shares one malloc heap: each step starts from the heap the other candidates' steps left
(the blocks they hold, where they freed), and MMRazor's recorders keep the last step's recorded
tensors alive until its next forward, i.e. through the other candidates' steps. On a CPU at COCO
size, where a quarter of a step can be the kernel refilling pages the allocator gave back, that
shared heap moves the step times. A user trains one distiller per process; this measures that:

- one persistent worker process per candidate (:data:`ISOLATED_CANDIDATES`), each built alone
  from the same seed as in the shared comparison (same weights, same batch) in the same
  environment, its peak-RSS mark reset after building;
- the parent sends ``step`` to one worker at a time and waits for its answer, so only one
  computes at any moment; rounds alternate the order (A B C D, D C B A, ...); the warm-up rounds
  come first;
- each worker times its own step (``perf_counter`` around it, no pipe traffic inside) and
  reports its CPU time, minor page faults and training loss (the teacher: the sum of its class
  logits); at the end, its peak RSS over all its steps.

With ``sets`` (``--isolated-sets``) the whole measurement repeats with fresh processes.
Run it with :func:`time_isolated` (``tools/benchmarks/peer_step.py --isolated-iters N``); the
workers are ``python -m tools.benchmarks.speed.isolated serve ...``.
"""
import argparse
import gc
import json
import os.path as osp
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional

import torch

from .candidates import (DEFAULT_SPEC, build_models, pair_configs, python_env, setup_process,
                         spec_batch)
from .memory import peak_rss_bytes, reset_peak_rss
from .models import build_random_teacher
from .peers import PEERS
from .step import TrainStep
from .timing import process_usage, ratio_summary, summarize

__all__ = ['ISOLATED_CANDIDATES', 'serve', 'time_isolated']

#: The candidates timed each in a process of its own: as in the shared comparison, the plain
#: student's training step, the teacher's forward (``mode='tensor'``, ``no_grad``) and the two
#: distillers' training steps.
ISOLATED_CANDIDATES = ('student', 'teacher', 'ours', 'peer')
#: Prefix of the workers' answer lines (everything else on their stdout is log noise).
_TAG = '@@mmkdcal-isolated '


def _answer(obj: dict) -> None:
    sys.stdout.write(_TAG + json.dumps(obj) + '\n')
    sys.stdout.flush()


def serve(peer: str, spec: dict, candidate: str) -> None:
    """The worker: build ``candidate`` alone, then run one timed step per ``step`` line of
    stdin until ``stop`` or its end.

    Answers (tagged JSON lines on stdout): ``ready`` after building; per step ``ms``,
    ``user_ms``, ``sys_ms``, ``minor_faults`` and ``loss``; at ``stop`` the peak RSS of all
    steps (``peak_rss_bytes``; ``peak_reset_after_build``: whether the mark was reset).
    """
    if candidate not in ISOLATED_CANDIDATES:
        raise ValueError(f'candidate must be one of {ISOLATED_CANDIDATES}, got {candidate!r}.')
    setup_process(spec)
    if candidate == 'teacher':
        s_cfg, t_cfg = pair_configs(spec['models'])
        teacher = build_random_teacher(t_cfg, spec['seed'])  # what the others load
        teacher.eval()
        inputs, samples = spec_batch(spec, s_cfg, teacher.data_preprocessor)

        def step():
            with torch.no_grad():
                cls_scores = teacher(inputs, mode='tensor')[0]
            return sum(float(c.sum()) for c in cls_scores)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            m = build_models(peer, spec, tmp, want=(candidate, ))
        model = m[candidate]
        inputs, samples = spec_batch(spec, m['student_cfg'], model.data_preprocessor)
        train_step = TrainStep(model, torch.device('cpu'), None, spec['lr'])

        def step():
            train_step(inputs, samples)
            return float(train_step.last_loss)
    gc.collect()
    was_reset = reset_peak_rss()
    _answer(dict(ready=candidate, torch=torch.__version__, threads=torch.get_num_threads()))
    for line in sys.stdin:
        command = line.strip()
        if command == 'stop':
            break
        if command != 'step':
            raise ValueError(f'unknown command {command!r} (step or stop)')
        u0 = process_usage()
        t0 = time.perf_counter()
        loss = step()
        ms = (time.perf_counter() - t0) * 1e3
        u1 = process_usage()
        row = {k: u1[k] - u0[k] for k in u0}
        _answer(dict(ms=ms, loss=loss, **row))
    _answer(dict(peak_rss_bytes=peak_rss_bytes(), peak_reset_after_build=was_reset))


class _Worker:
    """One ``serve`` process and its answers."""

    def __init__(self, python: str, peer: str, spec: dict, candidate: str, env: dict,
                 log_dir: str) -> None:
        self.name = candidate
        self.log_path = osp.join(log_dir, f'{candidate}.log')
        self._log = open(self.log_path, 'w')
        cmd = [python, '-m', 'tools.benchmarks.speed.isolated', 'serve', '--spec', json.dumps(spec),
               '--peer', peer, '--candidate', candidate]
        self.proc = subprocess.Popen(cmd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._log, text=True)

    def read(self) -> dict:
        for line in self.proc.stdout:
            if line.startswith(_TAG):
                return json.loads(line[len(_TAG):])
        self.proc.wait()
        self._log.flush()
        with open(self.log_path) as f:
            tail = f.read()[-4000:]
        raise RuntimeError(f'the isolated {self.name} worker ended ({self.proc.returncode}) '
                           f'before answering:\n{tail}')

    def send(self, command: str) -> dict:
        self.proc.stdin.write(command + '\n')
        self.proc.stdin.flush()
        return self.read()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._log.close()


def _run_set(python: str, peer: str, spec: dict, names: List[str], env: dict, iters: int,
             warmup: int) -> dict:
    """One set of fresh worker processes: build each, then the warm-up and timed rounds."""
    workers: Dict[str, _Worker] = {}
    samples: Dict[str, List[float]] = {n: [] for n in names}
    usage: Dict[str, List[dict]] = {n: [] for n in names}
    losses: Dict[str, List[float]] = {n: [] for n in names}
    order: List[str] = []
    with tempfile.TemporaryDirectory() as logs:
        try:
            for name in names:  # built one after the other: builds do not overlap
                workers[name] = _Worker(python, peer, spec, name, env, logs)
                workers[name].read()
            for r in range(warmup + iters):
                for name in (names if r % 2 == 0 else names[::-1]):
                    row = workers[name].send('step')
                    order.append(name)
                    losses[name].append(row.pop('loss'))
                    ms = row.pop('ms')
                    if r >= warmup:
                        samples[name].append(ms)
                        usage[name].append(row)
            peaks = {name: workers[name].send('stop') for name in names}
            for w in workers.values():
                w.proc.wait(timeout=60)
        finally:
            for w in workers.values():
                w.close()
    return dict(samples=samples, usage=usage, losses=losses, order=order, peaks=peaks)


def time_isolated(python: str, peer: str, spec: dict, iters: int,
                  warmup: Optional[int] = None, sets: int = 1) -> dict:
    """Interleaved steps of every candidate, each in its own worker process.

    With ``sets > 1`` the whole measurement (fresh workers, warm-up, ``iters`` rounds) runs
    that many times one after the other, and the rounds of all sets are pooled: whatever a
    process's own state does to its step time (where its allocations landed, how its weights
    sit in memory) then varies between sets instead of holding for every round.

    Args:
        python: The interpreter of the environment every worker runs in.
        peer: A key of :data:`~.peers.PEERS`.
        spec: The run's spec (size, threads, seed, lr, malloc, ...).
        iters: Timed rounds per set.
        warmup: Untimed rounds first in each set (default ``spec['warmup']``).
        sets: How many sets of fresh worker processes.

    Returns:
        ``times_ms`` / ``usage`` (summaries), ``samples_ms`` / ``usage_samples`` (per round, the
        sets one after the other), ``losses`` (every step's training loss, warm-up included,
        set after set), ``peak_rss_bytes`` per candidate (the largest of its sets), ``order``
        (who ran when), ``ratios`` (``ours_over_peer``, ``ours_over_peer_user_cpu``,
        ``ours_over_student_plus_teacher``, ``peer_over_student_plus_teacher``) and
        ``per_set`` (each set's median times and ``ours_over_peer``).
    """
    warmup = spec['warmup'] if warmup is None else warmup
    if iters < 1 or warmup < 0 or sets < 1:
        raise ValueError(f'iters and sets must be >= 1 and warmup >= 0, got iters={iters}, '
                         f'sets={sets}, warmup={warmup}.')
    env = python_env(spec['threads'], spec.get('malloc', 'default'))
    names = list(ISOLATED_CANDIDATES)
    runs = [_run_set(python, peer, spec, names, env, iters, warmup) for _ in range(sets)]
    samples = {n: [v for run in runs for v in run['samples'][n]] for n in names}
    usage = {n: [row for run in runs for row in run['usage'][n]] for n in names}
    user = {n: [row['user_ms'] for row in rows] for n, rows in usage.items()}
    return dict(
        candidates=names, warmup=warmup, iters=iters, sets=sets,
        order=[n for run in runs for n in run['order']],
        times_ms={n: summarize(v) for n, v in samples.items()}, samples_ms=samples,
        usage={n: {k: summarize([row[k] for row in rows]) for k in rows[0]}
               for n, rows in usage.items()},
        usage_samples=usage,
        losses={n: [v for run in runs for v in run['losses'][n]] for n in names},
        peak_rss_bytes={n: max(run['peaks'][n]['peak_rss_bytes'] for run in runs)
                        for n in names},
        peak_reset_after_build=all(p['peak_reset_after_build'] for run in runs
                                   for p in run['peaks'].values()),
        per_set=[dict(median_ms={n: statistics.median(run['samples'][n]) for n in names},
                      ours_over_peer=ratio_summary(run['samples']['ours'],
                                                   [run['samples']['peer']]))
                 for run in runs],
        ratios=dict(
            ours_over_peer=ratio_summary(samples['ours'], [samples['peer']]),
            ours_over_peer_user_cpu=ratio_summary(user['ours'], [user['peer']]),
            ours_over_student_plus_teacher=ratio_summary(
                samples['ours'], [samples['student'], samples['teacher']]),
            peer_over_student_plus_teacher=ratio_summary(
                samples['peer'], [samples['student'], samples['teacher']])))


def main(argv: Optional[List[str]] = None) -> None:
    """Entry point of the worker processes."""
    p = argparse.ArgumentParser(description='a worker of the isolated peer timing')
    p.add_argument('task', choices=['serve'])
    p.add_argument('--spec', required=True, help='the run spec, JSON')
    p.add_argument('--peer', required=True, choices=sorted(PEERS))
    p.add_argument('--candidate', required=True, choices=ISOLATED_CANDIDATES)
    args = p.parse_args(argv)
    serve(args.peer, dict(DEFAULT_SPEC, **json.loads(args.spec)), args.candidate)


if __name__ == '__main__':
    main(sys.argv[1:])
