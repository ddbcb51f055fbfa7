"""A small stateful wrapper around :func:`~mmkdcal.calibration.fit_temperature`."""
from typing import Any, Optional, Sequence

import torch

from ._inputs import float_tensor
from .temperature import fit_temperature

__all__ = ['TemperatureScaler']


class TemperatureScaler:
    """Fit a temperature once, then rescale logits with it: ``transform(z) = z / T``.

    Args:
        mode: ``'softmax'`` or ``'sigmoid'`` (see :func:`fit_temperature`).
        objective: ``'nll'``, ``'ece'`` or ``'ace'``.
        per_class: One temperature per class instead of a scalar.
        n_bins: Bins of the ECE/ACE objectives.
        bounds: ``(T_min, T_max)`` of the ECE/ACE search.

    Example:
        >>> scaler = TemperatureScaler(mode='softmax').fit(val_logits, val_labels)
        >>> calibrated = scaler.transform(test_logits).softmax(-1)
    """

    def __init__(self,
                 mode: str = 'softmax',
                 objective: str = 'nll',
                 per_class: bool = False,
                 n_bins: int = 15,
                 bounds: Sequence[float] = (0.05, 20.0)) -> None:
        self.mode = mode
        self.objective = objective
        self.per_class = per_class
        self.n_bins = n_bins
        self.bounds = tuple(bounds)
        self._temperature: Optional[torch.Tensor] = None

    @property
    def temperature(self) -> torch.Tensor:
        """torch.Tensor: The fitted temperature (0-dim, or (K,) per class)."""
        if self._temperature is None:
            raise RuntimeError('TemperatureScaler is not fitted: call `fit(logits, targets)` '
                               'first.')
        return self._temperature

    def fit(self, logits: Any, targets: Any) -> 'TemperatureScaler':
        """Fit the temperature on held-out ``(logits, targets)``.

        Args:
            logits: (N, K) logits (or (N,) for ``mode='sigmoid'``).
            targets: Labels/targets as :func:`fit_temperature` takes them.

        Returns:
            TemperatureScaler: ``self``, fitted.
        """
        self._temperature = fit_temperature(logits, targets, mode=self.mode,
                                            objective=self.objective, per_class=self.per_class,
                                            n_bins=self.n_bins, bounds=self.bounds)
        return self

    def transform(self, logits: Any) -> torch.Tensor:
        """Divide ``logits`` by the fitted temperature (per-class T applies to the last dim).

        Args:
            logits: Logits of shape (..., K) (any shape for a scalar T).

        Returns:
            torch.Tensor: ``logits / T`` in the dtype of ``logits``.
        """
        t = self.temperature
        z = float_tensor(logits, 'logits', finite=False)
        if t.dim() == 1 and (z.dim() == 0 or z.shape[-1] != t.shape[0]):
            raise ValueError(f'`logits` must end with the K={t.shape[0]} classes the per-class '
                             f'temperature was fitted on, got shape {tuple(z.shape)}.')
        return z / t.to(device=z.device, dtype=z.dtype)

    def fit_transform(self, logits: Any, targets: Any) -> torch.Tensor:
        """Fit on ``(logits, targets)`` and return ``logits / T``.

        Args:
            logits: (N, K) logits (or (N,) for ``mode='sigmoid'``).
            targets: Labels/targets as :func:`fit_temperature` takes them.

        Returns:
            torch.Tensor: The rescaled logits.
        """
        return self.fit(logits, targets).transform(logits)

    def __repr__(self) -> str:
        t = None if self._temperature is None else self._temperature.tolist()
        return (f'{type(self).__name__}(mode={self.mode!r}, objective={self.objective!r}, '
                f'per_class={self.per_class}, temperature={t})')
