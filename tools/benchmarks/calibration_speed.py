"""Time mmkdcal's calibration metrics against the reference libraries on the same data.

* D-ECE of 1M detections (confidence, and confidence + relative box cx, cy, w, h; 10 bins per
  dimension) against ``netcal.metrics.ECE(10, detection=True)``;
* top-label ECE of 1M x 100 float32 softmax probabilities (15 bins) against torchmetrics'
  ``multiclass_calibration_error``.

Both values are printed (they must agree) with the best-of-``--repeat`` wall time of each.

Run:  python tools/benchmarks/calibration_speed.py [--detections 1000000] [--samples 1000000]
"""
import argparse
import platform
import time
from typing import Callable, List, Tuple

import numpy as np
import torch


def best_time(fn: Callable[[], float], repeat: int) -> Tuple[float, float]:
    """Return (value, best wall time in seconds) of ``repeat`` calls."""
    best, value = float('inf'), None
    for _ in range(repeat):
        start = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - start)
    return float(value), best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--detections', type=int, default=1_000_000)
    parser.add_argument('--samples', type=int, default=1_000_000)
    parser.add_argument('--classes', type=int, default=100)
    parser.add_argument('--repeat', type=int, default=3)
    parser.add_argument('--threads', type=int, default=None, help='torch.set_num_threads')
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from netcal.metrics import ECE as NetcalECE
    from torchmetrics.functional.classification import multiclass_calibration_error

    from mmkdcal.calibration import detection_ece, ece

    rows: List[Tuple[str, str, float, float, float, float]] = []
    rng = np.random.default_rng(0)

    # ---- D-ECE: 1M detections, features in [0, 1] as netcal expects them
    n = args.detections
    scores = rng.random(n).astype(np.float32)
    matched = rng.random(n) < scores**1.5
    feats = rng.random((n, 4))  # relative cx, cy, w, h
    x_conf = scores
    x_box = np.concatenate([scores[:, None].astype(np.float64), feats], axis=1)
    for name, x, kw in (('D-ECE conf', x_conf, {}),
                        ('D-ECE conf+cx,cy,w,h', x_box, dict(features=feats))):
        ref, t_ref = best_time(lambda: NetcalECE(10, detection=True).measure(x, matched),
                               args.repeat)
        ours, t_ours = best_time(lambda: detection_ece(scores, matched, n_bins=10, **kw),
                                 args.repeat)
        rows.append((name, f'{n:,} dets, netcal 1.4', ours, ref, t_ours, t_ref))

    # ---- top-label ECE: 1M x 100 float32 probabilities
    n, k = args.samples, args.classes
    g = torch.Generator().manual_seed(0)
    probs = torch.empty(n, k)
    labels = torch.empty(n, dtype=torch.long)
    chunk = 100_000
    for i in range(0, n, chunk):  # build in chunks to keep the peak memory at one copy
        z = 3 * torch.randn(min(chunk, n - i), k, generator=g)
        probs[i:i + chunk] = torch.softmax(z, dim=1)
        labels[i:i + chunk] = torch.multinomial(torch.softmax(z / 2, 1), 1, generator=g)[:, 0]
    del z
    ref, t_ref = best_time(
        lambda: multiclass_calibration_error(probs, labels, k, n_bins=15, norm='l1').item(),
        args.repeat)
    ours, t_ours = best_time(lambda: ece(probs, labels, n_bins=15), args.repeat)
    rows.append(('ECE top-label', f'{n:,} x {k} float32, torchmetrics', ours, ref, t_ours, t_ref))

    print(f'machine: {platform.machine()}, {torch.get_num_threads()} torch threads, '
          f'torch {torch.__version__}, numpy {np.__version__}')
    head = (f'{"metric":<22} {"data, reference":<34} {"mmkdcal value":>14} {"reference":>14} '
            f'{"|diff|":>8} {"mmkdcal s":>10} {"ref s":>8} {"speed-up":>9}')
    print(head)
    print('-' * len(head))
    for name, data, ours, ref, t_ours, t_ref in rows:
        print(f'{name:<22} {data:<34} {ours:>14.9f} {ref:>14.9f} {abs(ours - ref):>8.1e} '
              f'{t_ours:>10.3f} {t_ref:>8.3f} {t_ref / t_ours:>8.1f}x')


if __name__ == '__main__':
    main()
