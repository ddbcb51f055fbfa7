"""The contract between distillers and distillation losses: what each side declares and checks.

Both sides import this module and it imports neither (no import cycle); see
docs/distillation_protocol.md, "The contract".
"""
from dataclasses import dataclass, field, replace
from typing import ClassVar, Dict, FrozenSet, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from torch import Tensor

__all__ = [
    'DistillBatch', 'DistillInput', 'DistillLoss', 'INPUT_KINDS', 'call_distill_loss',
    'check_loss_input'
]

#: The kinds of distiller outputs a loss can compare (:attr:`DistillInput.kind`): rows of class
#: logits, GFL-style box-side distributions, boxes, feature maps per level, mask logits.
INPUT_KINDS = ('logits', 'distribution', 'boxes', 'features', 'masks')


@dataclass(frozen=True)
class DistillInput:
    """One kind of output a distiller can hand to a loss.

    Args:
        name: The ``inputs`` value that selects it in ``distill_losses``.
        kind: One of :data:`INPUT_KINDS`.
        description: Half a sentence for messages, e.g. ``'per-prior sigmoid class logits
            (M, K)'``.
        activation: For logits: ``'sigmoid'`` or ``'softmax'``.
        provides: Optional loss arguments that come with it (``'labels'``, ``'weight'``,
            ``'avg_factor'``).
        temperature: Whether the teacher side is divided by the calibration temperature.
        per_level: The tensors are lists of levels; the loss is evaluated per level and summed.
        channels: ``(student, teacher)`` feature widths when known at build time.
        box_format: For boxes: ``'xyxy'`` for decoded corner boxes, None for raw outputs.
    """

    name: str
    kind: str
    description: str
    activation: Optional[str] = None
    provides: FrozenSet[str] = field(default_factory=frozenset)
    temperature: bool = False
    per_level: bool = False
    channels: Optional[Tuple[int, int]] = None
    box_format: Optional[str] = None

    def with_channels(self, student: Optional[int], teacher: Optional[int]) -> 'DistillInput':
        """A copy with the feature widths filled in (None where either is unknown)."""
        return replace(self, channels=None if None in (student, teacher) else (student, teacher))

    def with_per_level(self, per_level: bool) -> 'DistillInput':
        """A copy whose tensors are (or are not) lists of levels / stages."""
        return replace(self, per_level=per_level)


@dataclass
class DistillBatch:
    """The student and teacher tensors of one :class:`DistillInput` in one training step.

    For per-level inputs ``student``/``teacher`` are lists of levels (FPN levels, cascade
    stages), and ``labels``/``weight``/``avg_factor`` may be lists too (one per level).

    Args:
        student: Student tensor, or a list of per-level tensors.
        teacher: Teacher tensor(s) of the same layout (temperature already applied).
        labels: Integer class index per row, when the input provides labels.
        weight: Per-row weights, when the input provides them.
        avg_factor: Normaliser, when the input provides one.
        level_weights: Per-level loss weights (e.g. cascade stage weights); None: all 1.
    """

    student: Union[Tensor, Sequence[Tensor]]
    teacher: Union[Tensor, Sequence[Tensor]]
    labels: Optional[Union[Tensor, Sequence[Tensor]]] = None
    weight: Optional[Union[Tensor, Sequence[Tensor]]] = None
    avg_factor: Optional[Union[Tensor, Sequence[Tensor]]] = None
    level_weights: Optional[Sequence[float]] = None


class DistillLoss(nn.Module):
    """Base class of the distillation losses: what a loss declares, and the build-time check.

    A subclass states, as class attributes (instance attributes where they depend on the
    configuration, e.g. ``needs_iter``), what it compares and needs, and implements
    ``forward(student, teacher, **declared_kwargs)``: the distiller passes exactly the
    declared arguments (:func:`call_distill_loss`) and refuses at build time a loss whose
    needs its ``inputs`` cannot meet (:meth:`check_input`).
    """

    #: Kinds of distiller inputs this loss compares (a subset of :data:`INPUT_KINDS`).
    input_kinds: ClassVar[Tuple[str, ...]] = ()
    #: For ``'logits'``: the activation the loss interprets logits with; None: any.
    logit_activation: ClassVar[Optional[str]] = None
    #: ``forward`` takes ``weight=`` (per-sample weights, shape (M,)).
    accepts_weight: ClassVar[bool] = False
    #: ``forward`` takes ``avg_factor=`` (the loss is a sum divided by it).
    accepts_avg_factor: ClassVar[bool] = False
    #: ``forward`` needs ``labels=`` (integer class indices, one per row).
    needs_labels: bool = False
    #: ``forward`` needs ``cur_iter=`` (the 0-based training iteration).
    needs_iter: bool = False

    def check_input(self, spec: DistillInput) -> Optional[str]:
        """A sentence saying why this loss cannot compare the distiller input ``spec``, or
        None if it can; subclasses with further requirements (widths) extend it."""
        name = type(self).__name__
        if spec.kind not in self.input_kinds:
            kinds = (' or '.join(self.input_kinds) if self.input_kinds else
                     'nothing (it declares no input_kinds)')
            return (f'{name} compares {kinds}, but inputs={spec.name!r} gives '
                    f'{spec.description}')
        if (spec.kind == 'logits' and self.logit_activation is not None
                and spec.activation != self.logit_activation):
            return (f'{name} treats logits as {self.logit_activation} scores, but '
                    f'inputs={spec.name!r} gives {spec.description}')
        if self.needs_labels and 'labels' not in spec.provides:
            return (f'{name} needs the class label of every row, but inputs={spec.name!r} '
                    f'({spec.description}) carries no labels')
        return None


def check_loss_input(key: str, loss: nn.Module, spec: Optional[DistillInput], distiller: str,
                     specs: Dict[str, DistillInput]) -> None:
    """Raise ValueError unless ``loss`` can compare the distiller input ``spec``.

    Args:
        key, distiller: The ``distill_losses`` key and the distiller class name, for messages.
        loss: The built loss (a :class:`DistillLoss` unless the config is wrong).
        spec: The chosen input, or None when ``inputs`` names none of the distiller's.
        specs: All inputs of the distiller, to suggest the ones that would work.
    """
    loss_name = type(loss).__name__
    if not isinstance(loss, DistillLoss):
        raise TypeError(
            f'distill_losses.{key}: {loss_name} is not an mmkdcal DistillLoss, so it does not '
            'declare what it compares; subclass mmkdcal.models.losses.DistillLoss and set '
            'input_kinds (and logit_activation / needs_labels / ... as needed).')
    fits = [n for n, s in specs.items() if loss.check_input(s) is None]
    hint = (f'inputs that {loss_name} can use here: {fits}' if fits else
            f'{distiller} has no input that {loss_name} can use')
    if spec is None:
        raise ValueError(f'distill_losses.{key}.inputs must be one of {list(specs)} for '
                         f'{distiller}; {hint}.')
    problem = loss.check_input(spec)
    if problem is not None:
        raise ValueError(f'distill_losses.{key} cannot work: {problem}. Fix: change '
                         f'distill_losses.{key}.inputs or its type ({hint}).')


def call_distill_loss(loss: DistillLoss, batch: DistillBatch, spec: DistillInput,
                      cur_iter: Optional[int]) -> Tensor:
    """Evaluate ``loss`` on ``batch`` with exactly the keyword arguments it declared.

    Args:
        loss: The loss module.
        batch: The student/teacher tensors and what comes with them.
        spec: The input the batch belongs to (``per_level`` decides the call pattern).
        cur_iter: The 0-based iteration, for losses that declare ``needs_iter``.

    Returns:
        Tensor: The loss (summed over levels for per-level inputs).
    """
    kwargs = {}
    if loss.needs_labels:
        kwargs['labels'] = batch.labels
    if loss.accepts_weight and batch.weight is not None:
        kwargs['weight'] = batch.weight
    if loss.accepts_avg_factor and batch.avg_factor is not None:
        kwargs['avg_factor'] = batch.avg_factor
    if loss.needs_iter:
        if cur_iter is None:
            raise RuntimeError(
                f'{type(loss).__name__} needs the training iteration (it declares needs_iter), '
                'but the distiller passed cur_iter=None for this step; pass the 0-based '
                'iteration of the training loop.')
        kwargs['cur_iter'] = cur_iter
    if not spec.per_level:
        return loss(batch.student, batch.teacher, **kwargs)
    if len(batch.student) != len(batch.teacher):
        raise ValueError(f'inputs={spec.name!r}: the student has {len(batch.student)} levels, '
                         f'the teacher {len(batch.teacher)}; distil necks with the same levels.')
    weights = batch.level_weights or [1.0] * len(batch.student)
    total = None
    for i, (s, t) in enumerate(zip(batch.student, batch.teacher)):
        level_kwargs = {k: v[i] if isinstance(v, (list, tuple)) else v for k, v in kwargs.items()}
        value = weights[i] * loss(s, t, **level_kwargs)
        total = value if total is None else total + value
    return total if total is not None else torch.zeros(())
