"""Input conversion and validation shared by the calibration functions: tensors or arrays in,
bad input refused early with a message naming the argument and the fix.
"""
from typing import Any, Optional, Tuple

import numpy as np
import torch

__all__ = []  # private helpers


def as_tensor(x: Any, name: str) -> torch.Tensor:
    """Convert a tensor, numpy array or nested sequence to a tensor (device kept)."""
    if isinstance(x, torch.Tensor):
        return x.detach()
    if isinstance(getattr(x, 'tensor', None), torch.Tensor):  # box structures (mmdet's BaseBoxes)
        return x.tensor.detach()
    if isinstance(x, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(x))
    if isinstance(x, (list, tuple)) or np.isscalar(x):
        return torch.as_tensor(np.asarray(x))
    raise TypeError(f'`{name}` must be a torch.Tensor or numpy.ndarray, got {type(x).__name__}.')


def float_tensor(x: Any, name: str, ndim: Optional[Tuple[int, ...]] = None,
                 finite: bool = True, allow_empty: bool = False) -> torch.Tensor:
    """``x`` as a floating tensor (half -> float32) of an allowed rank; ``finite=False`` skips the
    NaN/inf check, ``allow_empty`` accepts zero samples.
    """
    t = as_tensor(x, name)
    if t.dtype == torch.bool or not (t.is_floating_point() or t.dtype in _INT_DTYPES):
        raise TypeError(f'`{name}` must hold real numbers, got dtype {t.dtype}.')
    if not t.is_floating_point() or t.dtype in (torch.float16, torch.bfloat16):
        t = t.float()
    if ndim is not None and t.dim() not in ndim:
        raise ValueError(f'`{name}` must have {" or ".join(map(str, ndim))} dimension(s), '
                         f'got shape {tuple(t.shape)}.')
    if not allow_empty and t.dim() > 0 and t.shape[0] == 0:
        raise ValueError(f'`{name}` is empty: at least one sample is needed.')
    if finite:
        check_finite(t, name)
    return t


def check_finite(t: torch.Tensor, name: str) -> None:
    """Raise ValueError if a floating tensor holds NaN or inf (one pass over the data)."""
    if t.numel() == 0:
        return
    lo, hi = torch.aminmax(t)  # NaN propagates into both
    if not (torch.isfinite(lo) and torch.isfinite(hi)):
        raise ValueError(f'`{name}` contains NaN or inf values: remove or fix those samples first.')


_INT_DTYPES = (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)


def check_probs(p: torch.Tensor, name: str, simplex: bool = False) -> None:
    """Check that ``p`` holds probabilities (and with ``simplex``, that rows sum to 1 +- 1e-3)."""
    check_finite(p, name)
    lo, hi = torch.aminmax(p)
    if lo < 0 or hi > 1:
        raise ValueError(f'`{name}` must hold probabilities in [0, 1], got values in '
                         f'[{lo.item():.4g}, {hi.item():.4g}]: apply softmax/sigmoid '
                         'to logits first.')
    if simplex:
        if p.dim() != 2 or p.shape[1] < 2:
            raise ValueError(f'`{name}` must have shape (N, K) with K >= 2, got {tuple(p.shape)}.')
        s = p.sum(dim=1)
        if ((s - 1).abs() > 1e-3).any():
            worst = s[(s - 1).abs().argmax()].item()
            raise ValueError(f'Rows of `{name}` must sum to 1 (softmax probabilities); the '
                             f'worst row sums to {worst:.6g}. Use the class-wise metrics for '
                             'independent (sigmoid) probabilities.')


def int_labels(labels: Any, n: int, num_classes: int, name: str = 'labels',
               allow_background: bool = False) -> torch.Tensor:
    """Convert class indices to a 1-D int64 tensor and check their range ([0, K), or [0, K]
    with ``allow_background``, the background index of dense detector heads)."""
    t = as_tensor(labels, name)
    if t.is_floating_point() or t.dtype == torch.bool or t.is_complex():
        raise TypeError(f'`{name}` must hold integer class indices, got dtype {t.dtype}; '
                        'pass one-hot/binary targets as a (N, K) array instead where supported.')
    if t.dim() != 1 or t.shape[0] != n:
        raise ValueError(f'`{name}` must have shape ({n},) to match the predictions, '
                         f'got {tuple(t.shape)}.')
    t = t.long()
    hi = num_classes + 1 if allow_background else num_classes
    if n and (t.min() < 0 or t.max() >= hi):
        raise ValueError(f'`{name}` must lie in [0, {hi - 1}] (number of classes K={num_classes}'
                         f'{", K = background" if allow_background else ""}), got values in '
                         f'[{t.min().item()}, {t.max().item()}].')
    return t


def binary_targets(targets: Any, shape: Tuple[int, ...], name: str = 'targets',
                   soft: bool = False) -> torch.Tensor:
    """Convert 0/1 targets (bool, int or float; with ``soft`` any value in [0, 1]) to a
    float64 tensor of the given shape."""
    t = as_tensor(targets, name)
    if tuple(t.shape) != tuple(shape):
        raise ValueError(f'`{name}` must have shape {tuple(shape)} to match the predictions, '
                         f'got {tuple(t.shape)}.')
    if soft and t.dtype != torch.bool and not ((t >= 0) & (t <= 1)).all():
        raise ValueError(f'`{name}` must hold values in [0, 1]; found others.')
    if not soft and t.dtype != torch.bool and not ((t == 0) | (t == 1)).all():
        raise ValueError(f'`{name}` must be binary (0/1 or bool); found other values.')
    return t.to(torch.float64)


def targets_matrix(targets: Any, n: int, num_classes: int, name: str = 'labels',
                   allow_background: bool = False) -> torch.Tensor:
    """Turn int labels (N,) (with ``allow_background``, K: an all-zero row) or binary targets
    (N, K) into a float64 (N, K) 0/1 matrix."""
    t = as_tensor(targets, name)
    if t.dim() == 1:
        lab = int_labels(t, n, num_classes, name, allow_background)
        out = torch.zeros(n, num_classes + allow_background, dtype=torch.float64, device=lab.device)
        out[torch.arange(n, device=lab.device), lab] = 1.0
        return out[:, :num_classes]
    return binary_targets(t, (n, num_classes), name)


def check_n_bins(n_bins: Any, name: str = 'n_bins') -> int:
    """Check that the number of bins is a positive int."""
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise ValueError(f'`{name}` must be a positive int, got {n_bins!r}.')
    return int(n_bins)
