"""Interleaved timing of several candidates in one process, and summaries of the samples."""
import resource
import statistics
import time
from typing import Callable, Dict, List, Optional, Sequence

import torch

__all__ = ['cuda_peak_above_base', 'process_usage', 'ratio_summary', 'summarize', 'synchronize',
           'time_interleaved']


def synchronize(device: torch.device) -> None:
    """Wait for queued kernels (CUDA); a no-op on CPU."""
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def process_usage() -> Dict[str, float]:
    """CPU time (user, kernel) of this process, all its threads, in ms, and its page faults
    that needed no I/O (``ru_minflt``: first touches of fresh anonymous memory, mostly)."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return dict(user_ms=r.ru_utime * 1e3, sys_ms=r.ru_stime * 1e3, minor_faults=r.ru_minflt)


def time_interleaved(fns: Dict[str, Callable[[], object]], warmup: int, iters: int,
                     device: Optional[torch.device] = None,
                     usage: Optional[Dict[str, List[Dict[str, float]]]] = None
                     ) -> Dict[str, List[float]]:
    """Run every function ``warmup`` times, then time ``iters`` rounds, interleaved.

    Rounds alternate the order (A B C, C B A, ...) so that slow drift (clocks, other load)
    falls on every function alike; warm-up rounds run in the first order.

    Args:
        fns: Name -> function to time.
        warmup: Untimed rounds first.
        iters: Timed rounds.
        device: Synchronised before and after each timed call (CUDA). Defaults to CPU.
        usage: If given, filled with name -> one :func:`process_usage` difference per timed
            call (``user_ms``, ``sys_ms``, ``minor_faults``): on a CPU the work done and the
            kernel's share of the wall time (zeroing fresh pages the allocator mapped).

    Returns:
        Name -> list of ``iters`` durations in milliseconds.
    """
    if iters < 1 or warmup < 0:
        raise ValueError(f'iters must be >= 1 and warmup >= 0, got iters={iters}, '
                         f'warmup={warmup}.')
    device = device or torch.device('cpu')
    names = list(fns)
    for _ in range(warmup):
        for name in names:
            fns[name]()
    times: Dict[str, List[float]] = {name: [] for name in names}
    if usage is not None:
        usage.clear()
        usage.update({name: [] for name in names})
    for i in range(iters):
        for name in (names if i % 2 == 0 else names[::-1]):
            synchronize(device)
            u0 = process_usage() if usage is not None else None
            t0 = time.perf_counter()
            fns[name]()
            synchronize(device)
            times[name].append((time.perf_counter() - t0) * 1e3)
            if u0 is not None:
                u1 = process_usage()
                usage[name].append({k: u1[k] - u0[k] for k in u0})
    return times


def summarize(samples: Sequence[float]) -> Dict[str, float]:
    """Median and spread of timing samples.

    Args:
        samples: Durations (ms), at least one.

    Returns:
        ``median``, ``min``, ``max`` and ``rel_spread`` = (max - min) / median.
    """
    if len(samples) == 0:
        raise ValueError('summarize needs at least one sample.')
    med = float(statistics.median(samples))
    lo, hi = float(min(samples)), float(max(samples))
    return dict(median=med, min=lo, max=hi, rel_spread=(hi - lo) / med if med > 0 else 0.0)


def ratio_summary(num: Sequence[float], den: Sequence[Sequence[float]]) -> Dict[str, float]:
    """``num / sum(den)`` as a ratio of medians and as the median of per-round ratios.

    The per-round ratio pairs samples taken in the same round, so a change of machine load
    between rounds cancels; the two agree when the load was steady.

    Args:
        num: Samples of the numerator.
        den: One or more sample lists whose per-round sum is the denominator.

    Returns:
        ``of_medians``, ``per_round_median``, ``per_round_min``, ``per_round_max``,
        ``rounds`` and ``rounds_below_1`` (how many per-round ratios are below 1: for
        ours/peer, the rounds in which ours was faster).
    """
    if not den or any(len(d) != len(num) for d in den):
        raise ValueError('ratio_summary needs denominators with as many rounds as the numerator.')
    den_rounds = [sum(vals) for vals in zip(*den)]
    rounds = [n / d for n, d in zip(num, den_rounds)]
    return dict(of_medians=statistics.median(num) / sum(statistics.median(d) for d in den),
                per_round_median=float(statistics.median(rounds)),
                per_round_min=float(min(rounds)), per_round_max=float(max(rounds)),
                rounds=len(rounds), rounds_below_1=sum(v < 1.0 for v in rounds))


def cuda_peak_above_base(fn: Callable[[], object], device: torch.device) -> int:
    """Peak ``max_memory_allocated`` during ``fn()`` minus what was allocated before it."""
    synchronize(device)
    base = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    fn()
    synchronize(device)
    return torch.cuda.max_memory_allocated(device) - base
