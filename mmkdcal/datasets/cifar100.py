"""CIFAR-100 reader for the standard ``cifar-100-python`` folder, with a restricted unpickler.

The files (Krizhevsky 2009) are pickles (``train``, ``test``: ``data`` N x 3072 uint8 in R, G, B
planes, ``fine_labels``, ``coarse_labels``; ``meta``: label names); they are read with
:class:`CifarUnpickler`, which refuses every global a numpy array in a dict does not need.
Nothing is downloaded.
"""
import _codecs
import os
import os.path as osp
import pickle
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np
from mmengine.dataset import BaseDataset

from mmdet.registry import DATASETS, TRANSFORMS

from ..utils.checkpoint import NUMPY_MULTIARRAY
from . import transforms  # noqa: F401  (registers RandomCropPad, RandomHFlip, PackClsInputs)

__all__ = ['CIFAR100Dataset', 'CifarUnpickler', 'load_cifar_pickle']

CIFAR100_FOLDER = 'cifar-100-python'
CIFAR100_FILES = ('train', 'test', 'meta')

_GET_IT = ('get the `cifar-100-python.tar.gz` archive from the CIFAR page '
           '(https://www.cs.toronto.edu/~kriz/cifar.html) and unpack it there, e.g. '
           '`mkdir -p data/cifar100 && tar -xzf cifar-100-python.tar.gz -C data/cifar100`')


#: (module, name) -> the only globals a CIFAR pickle may reference. A numpy array is
#: pickled as ``_reconstruct(ndarray, shape, dtype)`` + state; Python 3 protocol-2 writers encode
#: raw bytes through ``_codecs.encode(str, 'latin1')``.
_ALLOWED_GLOBALS = {
    ('numpy.core.multiarray', '_reconstruct'): NUMPY_MULTIARRAY._reconstruct,
    ('numpy._core.multiarray', '_reconstruct'): NUMPY_MULTIARRAY._reconstruct,
    ('numpy', 'ndarray'): np.ndarray,
    ('numpy', 'dtype'): np.dtype,
    ('_codecs', 'encode'): _codecs.encode,
}


class CifarUnpickler(pickle.Unpickler):
    """Unpickler that builds only containers, strings, numbers and numpy arrays; any other
    global raises ``pickle.UnpicklingError`` naming it (``source``: the file, for messages).
    """

    def __init__(self, file, source: str = '<stream>') -> None:
        super().__init__(file, encoding='latin1')
        self.source = source

    def find_class(self, module: str, name: str) -> Any:
        """Resolve an allowed global or refuse."""
        allowed = _ALLOWED_GLOBALS.get((module, name))
        if allowed is None:
            raise pickle.UnpicklingError(
                f'{self.source}: refusing to load global {module}.{name}: a CIFAR-100 file only '
                'holds dicts, lists, strings and numpy arrays. The file is not a genuine CIFAR-100 '
                f'pickle (possibly malicious); replace it with a fresh copy ({_GET_IT}).')
        return allowed

    def persistent_load(self, pid: Any) -> Any:
        """Refuse persistent ids (a CIFAR pickle has none)."""
        raise pickle.UnpicklingError(f'{self.source}: persistent id {pid!r} refused; not a CIFAR '
                                     'pickle.')


def load_cifar_pickle(path: str) -> Dict[str, Any]:
    """Load one CIFAR pickle safely; its dict with ``str`` keys."""
    with open(path, 'rb') as f:
        obj = CifarUnpickler(f, source=path).load()
    if not isinstance(obj, dict):
        raise ValueError(f'{path}: expected a pickled dict (CIFAR-100 format), got '
                         f'{type(obj).__name__}.')
    return {(k.decode('latin1') if isinstance(k, bytes) else k): v for k, v in obj.items()}


def _as_str(value: Union[str, bytes]) -> str:
    return value.decode('latin1') if isinstance(value, bytes) else str(value)


def resolve_cifar100_folder(data_root: str) -> str:
    """The ``cifar-100-python`` folder: ``data_root`` itself or its child."""
    if not isinstance(data_root, (str, os.PathLike)) or not str(data_root):
        raise TypeError('CIFAR100Dataset: data_root must be a non-empty path to the directory '
                        f'that contains `{CIFAR100_FOLDER}/`, got {data_root!r}.')
    data_root = str(data_root)
    nested = osp.join(data_root, CIFAR100_FOLDER)
    if osp.isdir(nested):
        folder = nested
    elif all(osp.isfile(osp.join(data_root, name)) for name in CIFAR100_FILES):
        folder = data_root
    else:
        folder = nested
    missing = [name for name in CIFAR100_FILES if not osp.isfile(osp.join(folder, name))]
    if missing:
        raise FileNotFoundError(
            f'CIFAR100Dataset: missing {", ".join(missing)} in {folder} (expected the files '
            f'{", ".join(CIFAR100_FILES)} of the python version of CIFAR-100 under '
            f'{osp.join(data_root, CIFAR100_FOLDER)}). Nothing is downloaded automatically: '
            f'{_GET_IT}, or set data_root to where the unpacked folder lives.')
    return folder


@DATASETS.register_module()
class CIFAR100Dataset(BaseDataset):
    """CIFAR-100 (50,000 train / 10,000 test images; 100 fine or 20 coarse classes).

    Args:
        data_root: Directory containing ``cifar-100-python/`` (or that folder itself).
        split, label_type: ``'train'`` or ``'test'``; ``'fine'`` or ``'coarse'``.
        pipeline: Transforms, e.g. ``[RandomCropPad, RandomHFlip, PackClsInputs]``.
        **kwargs: Passed to :class:`mmengine.dataset.BaseDataset`.
    """

    METAINFO: dict = dict(dataset_name='CIFAR-100')

    def __init__(self, data_root: str, split: str = 'train',
                 pipeline: Sequence[Union[dict, Any]] = (), label_type: str = 'fine',
                 **kwargs) -> None:
        if split not in ('train', 'test'):
            raise ValueError(f"CIFAR100Dataset: split must be 'train' or 'test', got {split!r}.")
        if label_type not in ('fine', 'coarse'):
            raise ValueError("CIFAR100Dataset: label_type must be 'fine' (100 classes) or "
                             f"'coarse' (20 classes), got {label_type!r}.")
        for key in ('ann_file', 'data_prefix'):
            if key in kwargs:
                raise ValueError(f'CIFAR100Dataset: `{key}` is not used (the files are found from '
                                 f'data_root); remove it from the config.')
        self.folder = resolve_cifar100_folder(data_root)
        self.split = split
        self.label_type = label_type
        meta = load_cifar_pickle(osp.join(self.folder, 'meta'))
        names_key = f'{label_type}_label_names'
        if names_key not in meta:
            raise ValueError(f'{osp.join(self.folder, "meta")}: no `{names_key}` entry (keys: '
                             f'{sorted(meta)}); not a CIFAR-100 meta file.')
        classes = tuple(_as_str(n) for n in meta[names_key])
        metainfo = dict(kwargs.pop('metainfo', None) or {})
        metainfo.setdefault('classes', classes)
        self._images: Optional[np.ndarray] = None
        # Build the transforms from mmdet's registry here, so that the dataset also works outside a
        # Runner (no default scope set); instances and callables are kept as given.
        built = [TRANSFORMS.build(t) if isinstance(t, dict) else t for t in pipeline]
        super().__init__(data_root=str(data_root), metainfo=metainfo, pipeline=built, **kwargs)

    def load_data_list(self) -> List[dict]:
        """One ``dict(img_index, gt_label)`` per image (images kept in one array)."""
        path = osp.join(self.folder, self.split)
        content = load_cifar_pickle(path)
        label_key = f'{self.label_type}_labels'
        for key in ('data', label_key):
            if key not in content:
                raise ValueError(f'{path}: no `{key}` entry (keys: {sorted(content)}); not a '
                                 f'CIFAR-100 {self.split} file.')
        data = np.asarray(content['data'])
        if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
            raise ValueError(f'{path}: `data` must be an (N, 3072) uint8 array, got '
                             f'{data.dtype} {data.shape}.')
        labels = np.asarray(content[label_key], dtype=np.int64)
        num_classes = len(self.metainfo['classes'])
        if labels.shape != (data.shape[0],):
            raise ValueError(f'{path}: `{label_key}` has {labels.size} entries for '
                             f'{data.shape[0]} images.')
        if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
            raise ValueError(f'{path}: `{label_key}` values must lie in [0, {num_classes}), got '
                             f'[{labels.min()}, {labels.max()}].')
        # rows are R-plane, G-plane, B-plane, each 32x32 row-major -> (N, 32, 32, 3) RGB
        self._images = np.ascontiguousarray(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
        return [dict(img_index=i, gt_label=int(label)) for i, label in enumerate(labels)]

    def get_data_info(self, idx: int) -> dict:
        """The info of item ``idx`` with its image (32x32x3 uint8 RGB copy) attached."""
        info = super().get_data_info(idx)
        info['img'] = self._images[info['img_index']].copy()
        info['img_shape'] = info['ori_shape'] = (32, 32)
        return info
