"""A minimal MMEngine image classifier: a logits backbone plus a cross-entropy loss."""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModel
from mmengine.structures import BaseDataElement

from mmdet.registry import MODELS

__all__ = ['ImageClassifier', 'CIFAR100_MEAN', 'CIFAR100_STD', 'cifar100_data_preprocessor']

#: CIFAR-100 per-channel RGB mean and std on the 0-255 scale (the CRD/mdistiller benchmark's
#: ``transforms.Normalize`` values times 255).
CIFAR100_MEAN: Tuple[float, float, float] = (129.3105, 124.1085, 112.404)
CIFAR100_STD: Tuple[float, float, float] = (68.2125, 65.4075, 70.4055)


def cifar100_data_preprocessor() -> dict:
    """The ``ImgDataPreprocessor`` config that normalises CIFAR-100 images (stored as RGB by
    :class:`~mmkdcal.datasets.CIFAR100Dataset`: no channel swap)."""
    return dict(type='ImgDataPreprocessor', mean=list(CIFAR100_MEAN), std=list(CIFAR100_STD),
                bgr_to_rgb=False)


@MODELS.register_module()
class ImageClassifier(BaseModel):
    """Image classifier made of a backbone that returns logits, trained with cross-entropy.

    The backbone maps (N, 3, H, W) images to (N, K) logits and may expose
    ``forward_features(x) -> (pooled, [stage features])`` (the CIFAR backbones do).

    Args:
        backbone (dict): Config of the logits backbone, e.g.
            ``dict(type='CifarResNet', arch='resnet8x4', num_classes=100)``.
        data_preprocessor (dict, optional): Defaults to :func:`cifar100_data_preprocessor`.
        loss (dict, optional): A MODELS loss called as ``loss(logits, labels)``; None: the plain
            softmax cross-entropy with ``label_smoothing``.
        label_smoothing (float): Label smoothing of the plain cross-entropy, in [0, 1) (as
            ``torch.nn.functional.cross_entropy``); only with ``loss=None``.
        init_cfg (dict, optional): MMEngine initialisation config.
    """

    def __init__(self, backbone: dict, data_preprocessor: Optional[dict] = None,
                 loss: Optional[dict] = None, label_smoothing: float = 0.0,
                 init_cfg: Optional[dict] = None) -> None:
        if data_preprocessor is None:
            data_preprocessor = cifar100_data_preprocessor()
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if not isinstance(backbone, (dict, nn.Module)):
            raise TypeError('ImageClassifier: `backbone` must be a config dict such as '
                            "dict(type='CifarResNet', arch='resnet8x4') or an nn.Module, got "
                            f'{type(backbone).__name__}.')
        if not 0.0 <= float(label_smoothing) < 1.0:
            raise ValueError('ImageClassifier: label_smoothing must be in [0, 1), got '
                             f'{label_smoothing!r}.')
        if loss is not None and label_smoothing:
            raise ValueError('ImageClassifier: `label_smoothing` applies only to the built-in '
                             f'cross-entropy; got both loss={loss!r} and '
                             f'label_smoothing={label_smoothing!r}. Set loss=None to use label '
                             'smoothing, or label_smoothing=0.0 to use the configured loss.')
        self.backbone = MODELS.build(backbone) if isinstance(backbone, dict) else backbone
        self.loss_module = MODELS.build(loss) if loss is not None else None
        self.label_smoothing = float(label_smoothing)

    # ------------------------------------------------------------------ features / logits
    def extract_logits(self, inputs: torch.Tensor) -> torch.Tensor:
        """The (N, K) logits of (N, 3, H, W) normalised images (used by distillers)."""
        logits = self.backbone(inputs)
        if logits.dim() != 2 or logits.shape[0] != inputs.shape[0]:
            raise ValueError('ImageClassifier: the backbone must return (N, K) logits; got shape '
                             f'{tuple(logits.shape)} for N={inputs.shape[0]} inputs.')
        return logits

    def extract_feat(self, inputs: torch.Tensor) -> Tuple[torch.Tensor, List[torch.Tensor]]:
        """The backbone's ``forward_features(inputs)``: (pooled feature, stage features)."""
        if not hasattr(self.backbone, 'forward_features'):
            raise TypeError(f'ImageClassifier: backbone {type(self.backbone).__name__} has no '
                            '`forward_features`; use one of the Cifar* backbones or add it.')
        return self.backbone.forward_features(inputs)

    # ------------------------------------------------------------------ labels / loss
    @staticmethod
    def stack_labels(data_samples: Optional[Sequence[BaseDataElement]],
                     num_inputs: int) -> torch.Tensor:
        """The one-integer ``gt_label`` of each of ``num_inputs`` samples as an (N,) long
        tensor."""
        if data_samples is None or len(data_samples) != num_inputs:
            got = None if data_samples is None else len(data_samples)
            raise ValueError(f'ImageClassifier: mode="loss" needs one data sample with `gt_label` '
                             f'per input; got {got} data samples for {num_inputs} inputs.')
        labels = []
        for i, sample in enumerate(data_samples):
            if 'gt_label' not in sample:
                raise ValueError(f'ImageClassifier: data_samples[{i}] has no `gt_label`; pack '
                                 'samples with PackClsInputs (or set gt_label yourself).')
            label = torch.as_tensor(sample.gt_label)
            if label.numel() != 1 or label.dtype.is_floating_point:
                raise ValueError(f'ImageClassifier: data_samples[{i}].gt_label must be one integer '
                                 f'class index, got {label!r}.')
            labels.append(label.reshape(()).long())
        return torch.stack(labels)

    def loss(self, inputs: torch.Tensor,
             data_samples: Sequence[BaseDataElement]) -> Dict[str, torch.Tensor]:
        """``dict(loss_cls=...)``: the configured loss of normalised images' (N, K) logits
        against their samples' ``gt_label`` in [0, K)."""
        logits = self.extract_logits(inputs)
        labels = self.stack_labels(data_samples, inputs.shape[0]).to(logits.device)
        num_classes = logits.shape[1]
        if labels.numel() and (labels.min() < 0 or labels.max() >= num_classes):
            raise ValueError(f'ImageClassifier: gt_label values must lie in [0, {num_classes}) '
                             f'for a {num_classes}-class backbone; got min={int(labels.min())}, '
                             f'max={int(labels.max())}. Check the backbone num_classes.')
        if self.loss_module is not None:
            return dict(loss_cls=self.loss_module(logits, labels))
        return dict(loss_cls=F.cross_entropy(logits, labels, label_smoothing=self.label_smoothing))

    # ------------------------------------------------------------------ predict
    def predict(self, inputs: torch.Tensor,
                data_samples: Optional[Sequence[BaseDataElement]] = None) -> List[BaseDataElement]:
        """Write the logits ``pred_logits`` (K,), softmax ``pred_score`` and argmax
        ``pred_label`` into the N input samples (new ones when None); return them."""
        logits = self.extract_logits(inputs)
        if data_samples is not None and len(data_samples) != logits.shape[0]:
            raise ValueError(f'ImageClassifier: got {len(data_samples)} data samples for '
                             f'{logits.shape[0]} inputs; give one per input or None.')
        logits = logits.detach()
        scores = logits.softmax(dim=1)
        labels = scores.argmax(dim=1)
        outputs = []
        for i in range(logits.shape[0]):
            sample = BaseDataElement() if data_samples is None else data_samples[i]
            sample.set_data(dict(pred_logits=logits[i], pred_score=scores[i], pred_label=labels[i]))
            outputs.append(sample)
        return outputs

    # ------------------------------------------------------------------ entry point
    def forward(self, inputs: torch.Tensor,
                data_samples: Optional[Sequence[BaseDataElement]] = None, mode: str = 'tensor'
                ) -> Union[torch.Tensor, Dict[str, torch.Tensor], List[BaseDataElement]]:
        """MMEngine's modes on preprocessed images: ``'tensor'`` -> (N, K) logits,
        ``'loss'`` -> ``dict(loss_cls=...)``, ``'predict'`` -> samples with predictions."""
        if not isinstance(inputs, torch.Tensor) or inputs.dim() != 4:
            raise TypeError('ImageClassifier: `inputs` must be a (N, C, H, W) tensor (run the data '
                            f'preprocessor first); got {type(inputs).__name__}'
                            f'{tuple(inputs.shape) if isinstance(inputs, torch.Tensor) else ""}.')
        if mode == 'tensor':
            return self.extract_logits(inputs)
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        raise ValueError(f'ImageClassifier: mode must be "tensor", "loss" or "predict", got '
                         f'{mode!r}.')
