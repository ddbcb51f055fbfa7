"""Input checks and the weighted reduction shared by the distillation losses.

The reduction is MMDetection's own ``weight_reduce_loss``; :func:`weighted_reduce` only adds
the checks and the empty-batch rule that the distillation losses need (see its docstring).
"""
from typing import Optional, Sequence, Union

import torch
from torch import Tensor

from mmdet.models.losses.utils import weight_reduce_loss

__all__ = [
    'check_reduction', 'check_positive', 'check_non_negative', 'check_same_shape',
    'check_ndim', 'check_weight', 'detach_teacher', 'kl_div', 'standardise_channels',
    'weighted_reduce'
]

_REDUCTIONS = ('none', 'mean', 'sum')


def check_reduction(reduction: str) -> str:
    """Validate a ``reduction`` argument.

    Args:
        reduction (str): One of ``'none'``, ``'mean'``, ``'sum'``.

    Returns:
        str: The validated reduction.
    """
    if reduction not in _REDUCTIONS:
        raise ValueError(f'reduction must be one of {_REDUCTIONS}, got {reduction!r}.')
    return reduction


def _check_number(name: str, value: Union[int, float], allow_zero: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f'{name} must be a number, got {type(value).__name__}.')
    value = float(value)
    ok = value >= 0 if allow_zero else value > 0
    if not (ok and value != float('inf')):
        kind = 'non-negative' if allow_zero else 'positive'
        raise ValueError(f'{name} must be a {kind} finite number, got {value}.')
    return value


def check_positive(name: str, value: Union[int, float]) -> float:
    """Validate a strictly positive finite number (temperatures, factors).

    Args:
        name (str): Argument name, used in the error message.
        value (int | float): The value to check.

    Returns:
        float: ``value`` as a float.
    """
    return _check_number(name, value, allow_zero=False)


def check_non_negative(name: str, value: Union[int, float]) -> float:
    """Validate a non-negative finite number (loss weights, exponents).

    Args:
        name (str): Argument name, used in the error message.
        value (int | float): The value to check.

    Returns:
        float: ``value`` as a float.
    """
    return _check_number(name, value, allow_zero=True)


def _check_tensor(name: str, x: Tensor) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f'{name} must be a torch.Tensor, got {type(x).__name__}.')
    if not x.is_floating_point():
        raise TypeError(f'{name} must be a floating-point tensor, got dtype {x.dtype}.')


def check_same_shape(student_name: str, student: Tensor, teacher_name: str,
                     teacher: Tensor) -> None:
    """Check that a student and a teacher tensor are float tensors of one shape.

    Args:
        student_name (str): Name of the student argument, for the message.
        student (Tensor): Student tensor.
        teacher_name (str): Name of the teacher argument, for the message.
        teacher (Tensor): Teacher tensor.
    """
    _check_tensor(student_name, student)
    _check_tensor(teacher_name, teacher)
    if student.shape != teacher.shape:
        raise ValueError(
            f'{student_name} and {teacher_name} must have the same shape, got '
            f'{tuple(student.shape)} and {tuple(teacher.shape)}; gather the student and '
            'teacher outputs for the same samples and layout before calling the loss.')


def check_ndim(name: str, x: Tensor, ndim: int, layout: str) -> None:
    """Check the number of dimensions of an input.

    Args:
        name (str): Argument name, used in the error message.
        x (Tensor): The tensor to check.
        ndim (int): Expected number of dimensions.
        layout (str): Human-readable expected layout, e.g. ``'(M, C)'``.
    """
    _check_tensor(name, x)
    if x.dim() != ndim:
        raise ValueError(f'{name} must have shape {layout} ({ndim} dims), got '
                         f'{tuple(x.shape)}.')


def check_weight(weight: Optional[Tensor], shapes: Sequence[torch.Size]) -> None:
    """Check that an optional weight tensor has one of the allowed shapes.

    Args:
        weight (Tensor, optional): Weight tensor, or None.
        shapes (Sequence[torch.Size]): Allowed shapes.
    """
    if weight is None:
        return
    if not isinstance(weight, Tensor):
        raise TypeError(f'weight must be a torch.Tensor or None, got {type(weight).__name__}.')
    if weight.shape not in [torch.Size(s) for s in shapes]:
        allowed = ' or '.join(str(tuple(s)) for s in shapes)
        raise ValueError(f'weight must have shape {allowed}, got {tuple(weight.shape)}.')


def detach_teacher(teacher: Tensor, student: Tensor) -> Tensor:
    """Cut the teacher tensor from the graph and cast it to the student's dtype.

    The cast lets a teacher run in fp16 teach an fp32 student with the loss computed in the
    student's precision.

    Args:
        teacher (Tensor): Teacher tensor.
        student (Tensor): Student tensor whose dtype is used.

    Returns:
        Tensor: The detached teacher tensor in ``student.dtype``.
    """
    return teacher.detach().to(dtype=student.dtype)


def standardise_channels(feat: Tensor, eps: float = 1e-6) -> Tensor:
    """Per-channel standardisation of an (N, C, H, W) map over (N, H, W), population std.

    Args:
        feat (Tensor): The feature map.
        eps (float): Added to the std, so that a constant channel standardises to zeros.

    Returns:
        Tensor: ``(feat - mean_c) / (std_c + eps)``.
    """
    mean = feat.mean(dim=(0, 2, 3), keepdim=True)
    std = feat.var(dim=(0, 2, 3), keepdim=True, unbiased=False).sqrt()
    return (feat - mean) / (std + eps)


def kl_div(log_q: Tensor, log_p: Tensor, dim: int = -1) -> Tensor:
    """``KL(q || p) = sum q (log q - log p)`` from log-probabilities, summed over ``dim``.

    Args:
        log_q (Tensor): Log-probabilities of the target (teacher) distribution.
        log_p (Tensor): Log-probabilities of the predicted (student) distribution, same shape.
        dim (int): The dimension that holds the distribution. Defaults to -1.

    Returns:
        Tensor: The divergences, ``dim`` reduced.
    """
    return (log_q.exp() * (log_q - log_p)).sum(dim=dim)


def weighted_reduce(loss: Tensor,
                    weight: Optional[Tensor] = None,
                    reduction: str = 'mean',
                    avg_factor: Optional[Union[float, Tensor]] = None) -> Tensor:
    """Weight per-sample losses and reduce them with MMDetection's ``weight_reduce_loss``.

    ``mean`` without ``avg_factor`` averages over the samples; ``mean`` with ``avg_factor``
    returns ``sum(w * l) / (avg_factor + eps)`` (``eps`` = float32 epsilon); ``sum`` sums;
    ``none`` returns the weighted per-sample losses. Those numbers are mmdet's. Where our
    semantics deliberately differ, it is decided here, before mmdet's function is called:

    - an empty input with ``mean`` gives a zero that is still connected to the graph (mmdet's
      ``loss.mean()`` of nothing is NaN, and a distillation batch can be empty: an image whose
      teacher finds nothing, a step without sampled RoIs);
    - ``avg_factor`` is refused unless ``reduction='mean'`` (mmdet silently ignores it with
      ``'none'``), and a negative one is refused (on CUDA without a host sync);
    - ``reduction`` is checked with a message naming the choices;
    - ``weight`` is cast to the loss's dtype (a float32 weight does not promote an fp16 loss).

    Args:
        loss (Tensor): Per-sample (or per-element) losses.
        weight (Tensor, optional): Weights broadcastable to ``loss``. Defaults to None.
        reduction (str): ``'none'``, ``'mean'`` or ``'sum'``. Defaults to ``'mean'``.
        avg_factor (float | Tensor, optional): Normaliser for ``'mean'``. Defaults to None.

    Returns:
        Tensor: The reduced loss.
    """
    check_reduction(reduction)
    if weight is not None:
        weight = weight.to(loss.dtype)
    if avg_factor is not None:
        if reduction != 'mean':
            raise ValueError(f'avg_factor is only used with reduction="mean", got '
                             f'reduction={reduction!r}; drop avg_factor or use "mean".')
        if isinstance(avg_factor, Tensor) and avg_factor.is_cuda:
            # checked on the device: reading the value back would sync every training step
            torch._assert_async(avg_factor >= 0, 'avg_factor must be non-negative')
        elif float(avg_factor) < 0:
            raise ValueError(f'avg_factor must be non-negative, got {float(avg_factor)}.')
    elif reduction == 'mean' and loss.numel() == 0:
        return weight_reduce_loss(loss, weight, 'sum')
    return weight_reduce_loss(loss, weight, reduction, avg_factor)
