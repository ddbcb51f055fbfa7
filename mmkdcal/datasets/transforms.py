"""Transforms for small-image classification (CIFAR): pad-and-crop, horizontal flip, packing.

The standard CIFAR training augmentation (He et al., CVPR 2016, Sec. 4.2; used by CRD and
mdistiller as ``RandomCrop(32, padding=4)`` + ``RandomHorizontalFlip()``) is
``[RandomCropPad(size=32, padding=4), RandomHFlip(prob=0.5), PackClsInputs()]``; evaluation uses
``[PackClsInputs()]`` only. Randomness comes from numpy's global generator, which MMEngine seeds
per dataloader worker.
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
    """Pad the image on every side, then crop a random ``size`` x ``size`` window.

    With ``size=32, padding=4`` the top-left corner of the window is uniform over the 9 x 9
    positions of the 40 x 40 padded image, as ``torchvision.transforms.RandomCrop(32, padding=4)``.

    Args:
        size (int): Output height and width.
        padding (int): Pixels added on each side before cropping.
        pad_val (int): Constant fill value of the padding.
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
        """Crop ``results['img']`` in place of the dict.

        Args:
            results (dict): Must hold ``img`` (H, W, C).

        Returns:
            dict: ``results`` with the cropped ``img`` and ``img_shape``.
        """
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
    """Mirror the image left-right with probability ``prob``.

    Args:
        prob (float): Flip probability in [0, 1].
    """

    def __init__(self, prob: float = 0.5) -> None:
        if not 0.0 <= float(prob) <= 1.0:
            raise ValueError(f'RandomHFlip: prob must be in [0, 1], got {prob!r}.')
        self.prob = float(prob)

    def __call__(self, results: dict) -> dict:
        """Flip ``results['img']`` (H, W, C) along W with probability ``prob``.

        Args:
            results (dict): Must hold ``img``.

        Returns:
            dict: ``results`` with ``img`` and ``flip`` (bool) set.
        """
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
    """Pack an image and its label into ``dict(inputs=CxHxW uint8 tensor, data_samples=...)``.

    Args:
        meta_keys (Sequence[str]): Keys of ``results`` copied into the data sample's metainfo when
            present.
    """

    def __init__(self, meta_keys: Sequence[str] = ('sample_idx', 'img_index', 'img_shape',
                                                   'ori_shape', 'flip')) -> None:
        self.meta_keys = tuple(meta_keys)

    def __call__(self, results: dict) -> dict:
        """Convert ``results`` to the model input format.

        Args:
            results (dict): Must hold ``img`` (H, W, C) and ``gt_label`` (int).

        Returns:
            dict: ``inputs`` (C, H, W) tensor with the image dtype, ``data_samples``
            (:class:`BaseDataElement` with 0-dim long ``gt_label``).
        """
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
