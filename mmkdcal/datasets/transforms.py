"""Transforms for small-image classification (CIFAR): pad-and-crop, horizontal flip, packing.

Training uses ``[RandomCropPad(32, 4), RandomHFlip(0.5), PackClsInputs()]`` (He et al. 2016, as
CRD and mdistiller), evaluation ``[PackClsInputs()]``; randomness from numpy's global generator,
which MMEngine seeds per worker.
"""
from typing import Sequence

import numpy as np
import torch
from mmengine.structures import BaseDataElement

from mmdet.registry import TRANSFORMS

__all__ = ['RandomCropPad', 'RandomHFlip', 'PackClsInputs']


def _check_img(results: dict, who: str) -> np.ndarray:
    img = results.get('img') if isinstance(results, dict) else None
    if not isinstance(img, np.ndarray) or img.ndim != 3:
        raise TypeError(f'{who}: expects results["img"] to be an HxWxC numpy array, got '
                        f'{type(img).__name__}{getattr(img, "shape", "")}.')
    return img


@TRANSFORMS.register_module()
class RandomCropPad:
    """Pad the image by ``padding`` (``pad_val``) on every side, then crop a random ``size`` x
    ``size`` window (as ``torchvision.transforms.RandomCrop(size, padding)``).
    """

    def __init__(self, size: int = 32, padding: int = 4, pad_val: int = 0) -> None:
        if not isinstance(size, int) or size < 1:
            raise ValueError(f'RandomCropPad: size must be a positive int, got {size!r}.')
        if not isinstance(padding, int) or padding < 0:
            raise ValueError(f'RandomCropPad: padding must be an int >= 0, got {padding!r}.')
        self.size = size
        self.padding = padding
        self.pad_val = pad_val

    def __call__(self, results: dict) -> dict:
        """Crop ``results['img']`` (H, W, C)."""
        img = _check_img(results, 'RandomCropPad')
        p = self.padding
        padded = np.pad(img, ((p, p), (p, p), (0, 0)), mode='constant',
                        constant_values=self.pad_val)
        h, w = padded.shape[:2]
        if h < self.size or w < self.size:
            raise ValueError(f'RandomCropPad: padded image {h}x{w} is smaller than the crop size '
                             f'{self.size}; lower `size` or raise `padding`.')
        top = np.random.randint(0, h - self.size + 1)
        left = np.random.randint(0, w - self.size + 1)
        results['img'] = np.ascontiguousarray(padded[top:top + self.size, left:left + self.size])
        results['img_shape'] = (self.size, self.size)
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(size={self.size}, padding={self.padding}, ' \
               f'pad_val={self.pad_val})'


@TRANSFORMS.register_module()
class RandomHFlip:
    """Mirror the image left-right with probability ``prob``."""

    def __init__(self, prob: float = 0.5) -> None:
        if not 0.0 <= float(prob) <= 1.0:
            raise ValueError(f'RandomHFlip: prob must be in [0, 1], got {prob!r}.')
        self.prob = float(prob)

    def __call__(self, results: dict) -> dict:
        """Flip ``results['img']`` with probability ``prob``; set ``results['flip']``."""
        img = _check_img(results, 'RandomHFlip')
        flip = bool(np.random.rand() < self.prob)
        if flip:
            results['img'] = np.ascontiguousarray(img[:, ::-1])
        results['flip'] = flip
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(prob={self.prob})'


@TRANSFORMS.register_module()
class PackClsInputs:
    """Pack image and label into ``dict(inputs=CxHxW tensor, data_samples=...)``; ``meta_keys``
    of ``results`` go into the sample's metainfo.
    """

    def __init__(self, meta_keys: Sequence[str] = ('sample_idx', 'img_index', 'img_shape',
                                                   'ori_shape', 'flip')) -> None:
        self.meta_keys = tuple(meta_keys)

    def __call__(self, results: dict) -> dict:
        """``inputs`` (C, H, W) and ``data_samples`` (0-dim long ``gt_label``) of ``results``."""
        img = _check_img(results, 'PackClsInputs')
        if 'gt_label' not in results:
            raise KeyError('PackClsInputs: results has no `gt_label`; the dataset must provide '
                           'one per image.')
        inputs = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))
        metainfo = {k: results[k] for k in self.meta_keys if k in results}
        sample = BaseDataElement(metainfo=metainfo)
        sample.gt_label = torch.as_tensor(int(results['gt_label']), dtype=torch.long)
        return dict(inputs=inputs, data_samples=sample)

    def __repr__(self) -> str:
        return f'{type(self).__name__}(meta_keys={self.meta_keys})'
