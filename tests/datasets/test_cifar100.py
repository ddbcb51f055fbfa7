"""CIFAR-100 reader (planted values, missing files, malicious pickles) and CIFAR transforms."""
import os
import pickle

import numpy as np
import pytest
import torch

from mmdet.registry import DATASETS, TRANSFORMS

import mmkdcal  # noqa: F401
from mmkdcal.datasets import CIFAR100Dataset
from mmkdcal.datasets.transforms import PackClsInputs, RandomCropPad, RandomHFlip

from _helpers import write_cifar100_like


def _write_split(folder, name, content):
    with open(os.path.join(folder, name), 'wb') as f:
        pickle.dump(content, f, protocol=2)


# ---------------------------------------------------------------------------- reader
def test_reader_returns_planted_images_and_labels(tmp_path):
    planted = write_cifar100_like(str(tmp_path), n_train=6, n_test=3, seed=1)
    for split, n in (('train', 6), ('test', 3)):
        ds = DATASETS.build(dict(type='CIFAR100Dataset', data_root=str(tmp_path), split=split))
        images, fine, _ = planted[split]
        assert len(ds) == n
        for i in range(n):
            info = ds.get_data_info(i)
            np.testing.assert_array_equal(info['img'], images[i])
            assert info['img'].dtype == np.uint8 and info['img'].shape == (32, 32, 3)
            assert info['gt_label'] == fine[i]
    assert ds.metainfo['classes'] == tuple(f'fine_{i:02d}' for i in range(100))


def test_coarse_labels_and_folder_given_directly(tmp_path):
    planted = write_cifar100_like(str(tmp_path), n_train=4, n_test=2, seed=2)
    ds = CIFAR100Dataset(data_root=planted['folder'], split='test', label_type='coarse')
    assert [ds.get_data_info(i)['gt_label'] for i in range(2)] == planted['test'][2].tolist()
    assert len(ds.metainfo['classes']) == 20


def test_pixel_layout_is_rgb_planes_row_major(tmp_path):
    """Hand-built row: R plane 10, G plane 20, B plane 30, red of pixel (row 0, col 1) = 77."""
    folder = tmp_path / 'cifar-100-python'
    folder.mkdir()
    row = np.concatenate([np.full(1024, 10), np.full(1024, 20), np.full(1024, 30)])
    row[1] = 77            # R plane, row 0, column 1
    row[1024 + 32] = 88    # G plane, row 1, column 0
    data = row.astype(np.uint8)[None]
    _write_split(str(folder), 'train', dict(data=data, fine_labels=[42], coarse_labels=[3]))
    _write_split(str(folder), 'test', dict(data=data, fine_labels=[7], coarse_labels=[3]))
    _write_split(str(folder), 'meta', dict(fine_label_names=[str(i) for i in range(100)],
                                           coarse_label_names=[str(i) for i in range(20)]))
    info = CIFAR100Dataset(data_root=str(tmp_path), split='train').get_data_info(0)
    assert info['img'][0, 0].tolist() == [10, 20, 30]
    assert info['img'][0, 1].tolist() == [77, 20, 30]
    assert info['img'][1, 0].tolist() == [10, 88, 30]
    assert info['gt_label'] == 42


class _Py2StyleArray:
    """Pickles an array the way Python 2 files store it: payload as a (latin-1) text string,
    no ``_codecs.encode``; the reconstruct global is renamed to the numpy 1.x path below."""

    def __init__(self, arr):
        self.arr = arr

    def __reduce__(self):
        func, args, state = self.arr.__reduce__()
        args = (args[0], args[1], args[2].decode('latin1'))
        state = list(state)
        state[4] = state[4].decode('latin1')
        return func, args, tuple(state)


def test_python2_style_pickle_with_numpy1_global_loads(tmp_path):
    folder = tmp_path / 'cifar-100-python'
    folder.mkdir()
    data = (np.arange(2 * 3072) % 256).astype(np.uint8).reshape(2, 3072)
    blob = pickle.dumps(dict(data=_Py2StyleArray(data), fine_labels=[3, 99]), protocol=2)
    blob = blob.replace(b'numpy._core.multiarray\n', b'numpy.core.multiarray\n')
    assert b'numpy.core.multiarray\n_reconstruct' in blob and b'_codecs' not in blob
    (folder / 'train').write_bytes(blob)
    _write_split(str(folder), 'test', dict(data=data[:1], fine_labels=[0]))
    _write_split(str(folder), 'meta', dict(fine_label_names=[str(i) for i in range(100)]))
    ds = CIFAR100Dataset(data_root=str(tmp_path), split='train')
    img = ds.get_data_info(1)['img']
    # image 1, green plane (offset 1024), row 2, column 5 -> flat index 3072 + 1024 + 2*32 + 5
    assert img[2, 5, 1] == (3072 + 1024 + 69) % 256
    assert [ds.get_data_info(i)['gt_label'] for i in range(2)] == [3, 99]


def test_missing_folder_names_expected_files_and_archive(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        CIFAR100Dataset(data_root=str(tmp_path / 'nowhere'))
    msg = str(err.value)
    for part in ('train', 'test', 'meta', 'cifar-100-python.tar.gz', 'cifar-100-python'):
        assert part in msg


def test_one_missing_file_is_named(tmp_path):
    planted = write_cifar100_like(str(tmp_path), n_train=2, n_test=1)
    os.remove(os.path.join(planted['folder'], 'meta'))
    with pytest.raises(FileNotFoundError, match=r'missing meta in'):
        CIFAR100Dataset(data_root=str(tmp_path), split='train')


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}', ))


class _EvalExploit:
    def __reduce__(self):
        return (eval, ('1 + 1', ))


@pytest.mark.parametrize('which', ['train', 'meta'])
def test_malicious_pickle_is_refused_before_running(tmp_path, which):
    planted = write_cifar100_like(str(tmp_path), n_train=2, n_test=1)
    marker = tmp_path / 'pwned'
    _write_split(planted['folder'], which, dict(data=_Exploit(str(marker))))
    with pytest.raises(pickle.UnpicklingError, match=r'refusing to load global (posix|os)\.system'):
        CIFAR100Dataset(data_root=str(tmp_path), split='train')
    assert not marker.exists()


def test_builtins_eval_is_refused(tmp_path):
    planted = write_cifar100_like(str(tmp_path), n_train=2, n_test=1)
    _write_split(planted['folder'], 'test', [_EvalExploit()])
    with pytest.raises(pickle.UnpicklingError, match=r'(__builtin__|builtins)\.eval'):
        CIFAR100Dataset(data_root=str(tmp_path), split='test')


def test_malformed_content_fails_with_field_name(tmp_path):
    planted = write_cifar100_like(str(tmp_path), n_train=2, n_test=1)
    _write_split(planted['folder'], 'train',
                 dict(data=np.zeros((2, 3072), np.float32), fine_labels=[0, 1]))
    with pytest.raises(ValueError, match=r'`data` must be an \(N, 3072\) uint8'):
        CIFAR100Dataset(data_root=str(tmp_path), split='train')
    _write_split(planted['folder'], 'train',
                 dict(data=np.zeros((2, 3072), np.uint8), fine_labels=[0, 100]))
    with pytest.raises(ValueError, match=r'fine_labels'):
        CIFAR100Dataset(data_root=str(tmp_path), split='train')


def test_bad_split_argument(tmp_path):
    write_cifar100_like(str(tmp_path), n_train=1, n_test=1)
    with pytest.raises(ValueError, match='split'):
        CIFAR100Dataset(data_root=str(tmp_path), split='val')


def test_pipeline_output_format(tmp_path):
    planted = write_cifar100_like(str(tmp_path), n_train=3, n_test=1, seed=4)
    ds = CIFAR100Dataset(
        data_root=str(tmp_path), split='train',
        pipeline=[dict(type='RandomCropPad'), dict(type='RandomHFlip'), dict(type='PackClsInputs')])
    item = ds[1]
    assert item['inputs'].dtype == torch.uint8 and item['inputs'].shape == (3, 32, 32)
    assert item['data_samples'].gt_label.dtype == torch.long
    assert item['data_samples'].gt_label.dim() == 0
    assert int(item['data_samples'].gt_label) == planted['train'][1][1]
    assert item['data_samples'].metainfo['img_index'] == 1
    # the stored image is not modified by the transforms
    np.testing.assert_array_equal(ds.get_data_info(1)['img'], planted['train'][0][1])


# ---------------------------------------------------------------------------- transforms
def _position_image():
    """Channel 0 = row + 1, channel 1 = column + 1, so a crop reveals its offset."""
    img = np.zeros((32, 32, 3), np.uint8)
    img[..., 0] = np.arange(1, 33)[:, None]
    img[..., 1] = np.arange(1, 33)[None, :]
    return img


def test_random_crop_pad_is_a_uniform_window_of_the_padded_image():
    np.random.seed(0)
    img = _position_image()
    padded = np.zeros((40, 40, 3), np.uint8)
    padded[4:36, 4:36] = img
    t = TRANSFORMS.build(dict(type='RandomCropPad', size=32, padding=4))
    counts = np.zeros((9, 9), int)
    for _ in range(1500):
        out = t(dict(img=img.copy()))['img']
        # pixel (16, 16) is always inside the original image: it holds row/col + 1
        top, left = int(out[16, 16, 0]) - 13, int(out[16, 16, 1]) - 13
        np.testing.assert_array_equal(out, padded[top:top + 32, left:left + 32])
        counts[top, left] += 1
    assert (counts > 0).all()  # all 81 offsets occur
    assert counts.max() < 3 * 1500 / 81


def test_random_crop_pad_value_and_identity_without_padding():
    np.random.seed(1)
    img = _position_image()
    out = RandomCropPad(size=32, padding=4, pad_val=7)(dict(img=img.copy()))['img']
    top, left = int(out[16, 16, 0]) - 13, int(out[16, 16, 1]) - 13
    if top < 4:
        assert (out[:4 - top] == 7).all()
    if left < 4:
        assert (out[:, :4 - left] == 7).all()
    np.testing.assert_array_equal(RandomCropPad(size=32, padding=0)(dict(img=img))['img'], img)
    with pytest.raises(ValueError, match='crop size'):
        RandomCropPad(size=48, padding=4)(dict(img=img))


def test_random_hflip_probabilities():
    img = _position_image()
    flipped = RandomHFlip(prob=1.0)(dict(img=img.copy()))
    np.testing.assert_array_equal(flipped['img'], img[:, ::-1])
    assert flipped['flip'] is True
    np.testing.assert_array_equal(RandomHFlip(prob=0.0)(dict(img=img.copy()))['img'], img)
    np.random.seed(0)
    t = RandomHFlip(prob=0.5)
    rate = np.mean([t(dict(img=img))['flip'] for _ in range(2000)])
    assert 0.46 < rate < 0.54
    with pytest.raises(ValueError, match='prob'):
        RandomHFlip(prob=1.5)


def test_pack_cls_inputs_layout_and_errors():
    img = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    out = PackClsInputs()(dict(img=img, gt_label=5, sample_idx=9))
    assert out['inputs'][2, 3, 4] == img[3, 4, 2]
    assert torch.equal(out['inputs'], torch.from_numpy(img).permute(2, 0, 1))
    assert int(out['data_samples'].gt_label) == 5
    assert out['data_samples'].metainfo['sample_idx'] == 9
    with pytest.raises(KeyError, match='gt_label'):
        PackClsInputs()(dict(img=img))
    with pytest.raises(TypeError, match='HxWxC'):
        PackClsInputs()(dict(img=torch.zeros(3, 32, 32), gt_label=1))
