"""A small stateful wrapper around :func:`~mmkdcal.calibration.fit_temperature`."""
from typing import Any, Optional, Sequence

import torch

from ._inputs import float_tensor
from .temperature import fit_temperature

__all__ = ['TemperatureScaler']


class TemperatureScaler:
    """Fit a temperature once (``mode``, ``objective``, ``per_class``, ``n_bins``, ``bounds`` as
    :func:`fit_temperature`), then rescale logits: ``TemperatureScaler('softmax').fit(z_val,
    y_val).transform(z_test)``.
    """

    def __init__(self, mode: str = 'softmax', objective: str = 'nll', per_class: bool = False,
                 n_bins: int = 15, bounds: Sequence[float] = (0.05, 20.0)) -> None:
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
        """Fit the temperature on held-out ``(logits, targets)``; return ``self``."""
        self._temperature = fit_temperature(logits, targets, mode=self.mode,
                                            objective=self.objective, per_class=self.per_class,
                                            n_bins=self.n_bins, bounds=self.bounds)
        return self

    def transform(self, logits: Any) -> torch.Tensor:
        """``logits / T`` (a per-class T applies to the last dim), in the dtype of ``logits``."""
        t = self.temperature
        z = float_tensor(logits, 'logits', finite=False)
        if t.dim() == 1 and (z.dim() == 0 or z.shape[-1] != t.shape[0]):
            raise ValueError(f'`logits` must end with the K={t.shape[0]} classes the per-class '
                             f'temperature was fitted on, got shape {tuple(z.shape)}.')
        return z / t.to(device=z.device, dtype=z.dtype)

    def fit_transform(self, logits: Any, targets: Any) -> torch.Tensor:
        """Fit on ``(logits, targets)`` and return ``logits / T``."""
        return self.fit(logits, targets).transform(logits)

    def __repr__(self) -> str:
        t = None if self._temperature is None else self._temperature.tolist()
        return (f'{type(self).__name__}(mode={self.mode!r}, objective={self.objective!r}, '
                f'per_class={self.per_class}, temperature={t})')
