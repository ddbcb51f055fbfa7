"""One optimisation step as MMEngine's ``OptimWrapper`` / ``AmpOptimWrapper`` runs it."""
from typing import Optional

import torch

__all__ = ['TrainStep', 'tensor_bytes']


def tensor_bytes(module: torch.nn.Module) -> int:
    """Bytes of a module's parameters and buffers (its sub-modules only)."""
    return sum(t.numel() * t.element_size()
               for t in list(module.parameters()) + list(module.buffers()))


class TrainStep:
    """``loss`` -> ``parse_losses`` -> backward -> SGD step, on any MMEngine ``BaseModel``.

    Args:
        model: A model in train mode with ``loss(inputs, data_samples)`` and ``parse_losses``
            (a stock detector, an mmkdcal distiller, MMDetection's or MMRazor's distillers).
        device: Device of the model.
        amp: ``None`` for fp32, else the autocast dtype (``torch.float16``/``torch.bfloat16``);
            AMP uses a dynamic ``GradScaler`` like ``AmpOptimWrapper``.
        lr: SGD learning rate (momentum 0.9, weight decay 1e-4 as in the stock configs).
    """

    def __init__(self, model: torch.nn.Module, device: torch.device,
                 amp: Optional[torch.dtype] = None, lr: float = 1e-3) -> None:
        self.model = model
        self.device = device
        self.amp = amp
        self.optim = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=lr,
                                     momentum=0.9, weight_decay=1e-4)
        self.scaler = None
        if amp is not None:
            if hasattr(torch.amp, 'GradScaler'):
                self.scaler = torch.amp.GradScaler(device.type)
            elif device.type == 'cuda':  # torch < 2.3
                self.scaler = torch.cuda.amp.GradScaler()
            else:
                raise ValueError(f'AMP on {device.type} needs torch >= 2.3 (torch.amp.GradScaler); '
                                 f'this is torch {torch.__version__}: use fp32.')
        self.last_loss = torch.tensor(float('nan'))

    def __call__(self, inputs: torch.Tensor, samples: list) -> None:
        self.optim.zero_grad(set_to_none=True)
        with torch.autocast(self.device.type, dtype=self.amp or torch.bfloat16,
                            enabled=self.amp is not None):
            losses = self.model.loss(inputs, samples)
        loss, _ = self.model.parse_losses(losses)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optim)
            self.scaler.update()
        else:
            loss.backward()
            self.optim.step()
        self.last_loss = loss.detach()

    def state_bytes(self) -> int:
        """Bytes of the model's parameters, buffers and this optimizer's state."""
        n = tensor_bytes(self.model)
        for state in self.optim.state.values():
            n += sum(v.numel() * v.element_size() for v in state.values()
                     if isinstance(v, torch.Tensor))
        return n
