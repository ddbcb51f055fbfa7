"""What a distillation loss declares about itself, checked by the distiller when it is built.

Every mmkdcal distillation loss subclasses :class:`DistillLoss` and states, as class or instance
attributes, what it compares and what it needs:

- :attr:`~DistillLoss.input_kinds`: the kinds of distiller output it can compare (``'logits'``,
  ``'distribution'``, ``'boxes'``, ``'features'``, ``'masks'``; see
  :class:`~mmkdcal.models.distillers.DistillInput`);
- :attr:`~DistillLoss.logit_activation`: for logits, the activation it interprets them with
  (``'softmax'`` or ``'sigmoid'``), or None when it does not care;
- :attr:`~DistillLoss.needs_labels` / :attr:`~DistillLoss.needs_iter`: whether ``forward`` needs
  the samples' class labels (``labels=``) or the current 0-based iteration (``cur_iter=``);
- :attr:`~DistillLoss.accepts_weight` / :attr:`~DistillLoss.accepts_avg_factor`: whether
  ``forward`` takes per-sample ``weight=`` / an ``avg_factor=`` normaliser.

The distiller passes exactly the declared keyword arguments, and refuses at build time a loss
whose needs its ``inputs`` cannot meet (:meth:`DistillLoss.check_input`), so a config that cannot
work never reaches the first iteration. A new loss is one file: subclass, declare, register.
"""
from typing import ClassVar, Optional, Tuple

import torch.nn as nn

__all__ = ['DistillLoss', 'INPUT_KINDS']

#: The kinds of distiller outputs a loss can compare.
INPUT_KINDS = ('logits', 'distribution', 'boxes', 'features', 'masks')


class DistillLoss(nn.Module):
    """Base class of the distillation losses: declarations plus the build-time compatibility check.

    Subclasses set the class attributes below (instance attributes where they depend on the
    configuration, e.g. ``needs_iter`` of a loss with a warm-up) and implement
    ``forward(student, teacher, **declared_kwargs)``.
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

    def check_input(self, spec) -> Optional[str]:
        """Why this loss cannot compare the distiller input ``spec``, or None if it can.

        Subclasses with further requirements (channel counts, widths) extend it.

        Args:
            spec: The :class:`~mmkdcal.models.distillers.DistillInput` the config chose.

        Returns:
            str or None: A sentence naming the problem, or None.
        """
        name = type(self).__name__
        if spec.kind not in self.input_kinds:
            return (f'{name} compares {self._kinds_text()}, but inputs={spec.name!r} gives '
                    f'{spec.description}')
        if (spec.kind == 'logits' and self.logit_activation is not None
                and spec.activation != self.logit_activation):
            return (f'{name} treats logits as {self.logit_activation} scores, but '
                    f'inputs={spec.name!r} gives {spec.description}')
        if self.needs_labels and 'labels' not in spec.provides:
            return (f'{name} needs the class label of every row, but inputs={spec.name!r} '
                    f'({spec.description}) carries no labels')
        return None

    def _kinds_text(self) -> str:
        kinds = list(self.input_kinds)
        return ' or '.join(kinds) if kinds else 'nothing (it declares no input_kinds)'
