"""DigitsDet's optional instance masks (``with_masks``): each digit's ink pixels as COCO RLE."""
import filecmp
import json
import os.path as osp

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from sklearn.datasets import load_digits

from mmkdcal.datasets.digits_det import (INK_THRESHOLD, DigitsDetDataset, _cubic_matrix,
                                         _ink_rle, build_digits_det)

SMALL = dict(n_train=12, n_calib=4, n_val=6, seed=3)
SPLITS = ('train', 'calib', 'val')
#: content_sha256 of ``build_digits_det(root, **SMALL)`` written by the generator before masks
#: existed (commit be1e4fe): a default build must stay byte-identical to it.
SMALL_SHA256 = 'd63730107f5f8331e7568ba8c1a43c5b5d940e1344c0408c901504e3d4e084dc'


def _load(root, split):
    with open(osp.join(root, 'annotations', f'{split}.json')) as f:
        return json.load(f)


@pytest.fixture(scope='module')
def roots(tmp_path_factory):
    base = tmp_path_factory.mktemp('dd')
    plain, masks = str(base / 'plain'), str(base / 'masks')
    build_digits_det(plain, **SMALL)
    build_digits_det(masks, with_masks=True, **SMALL)
    return plain, masks


def test_planted_ink_rle():
    """A hand-made 5 x 4 ink pattern at (y, x) = (7, 3) on a 16 px canvas."""
    ink = np.array([[0, 1, 1, 0],
                    [1, 0, 0, 1],
                    [1, 1, 1, 1],
                    [1, 0, 0, 1],
                    [0, 0, 1, 0]], dtype=bool)
    rows, cols = np.flatnonzero(ink.any(1)), np.flatnonzero(ink.any(0))
    box = (3 + cols[0], 7 + rows[0], cols[-1] - cols[0] + 1, rows[-1] - rows[0] + 1)
    rle = _ink_rle(ink, 7, 3, box, 16)
    assert rle['size'] == [16, 16] and isinstance(rle['counts'], str)
    decoded = mask_utils.decode(dict(rle, counts=rle['counts'].encode()))
    want = np.zeros((16, 16), dtype=np.uint8)
    want[7:12, 3:7] = ink
    np.testing.assert_array_equal(decoded, want)
    assert int(mask_utils.area(dict(rle, counts=rle['counts'].encode()))) == 11 == ink.sum()
    # a box narrower than the ink clips the mask to it
    clipped = mask_utils.decode(_encode(_ink_rle(ink, 7, 3, (4, 7, 2, 5), 16)))
    np.testing.assert_array_equal(clipped[7:12, 4:6], ink[:, 1:3])
    assert clipped.sum() == ink[:, 1:3].sum()


def _encode(rle):
    return dict(rle, counts=rle['counts'].encode())


def test_masks_are_the_digits_ink_inside_their_boxes(roots):
    _, masks = roots
    scans = load_digits().images / 16.0
    n = 0
    for split in SPLITS:
        for ann in _load(masks, split)['annotations']:
            m = mask_utils.decode(_encode(ann['segmentation']))
            assert m.shape == (128, 128)
            x, y, w, h = ann['bbox']
            # inside its box, and the box is the mask's tight extent
            assert not m[:y].any() and not m[y + h:].any()
            assert not m[:, :x].any() and not m[:, x + w:].any()
            rows, cols = np.flatnonzero(m.any(1)), np.flatnonzero(m.any(0))
            assert [cols[0], rows[0], cols[-1] - cols[0] + 1, rows[-1] - rows[0] + 1] == \
                [x, y, w, h]
            # its area is the ink pixel count of the scan resized to the digit's size
            dh, dw = ann['digit_size']
            scan = scans[ann['source_index']]
            resized = np.clip(_cubic_matrix(dh, 8) @ scan @ _cubic_matrix(dw, 8).T, 0, 1)
            ink = int((resized >= INK_THRESHOLD).sum())
            assert int(mask_utils.area(_encode(ann['segmentation']))) == ink == int(m.sum())
            assert ann['area'] == w * h  # the box area, as without masks
            n += 1
    assert n > 20


def test_masks_change_nothing_else_and_default_builds_are_unchanged(roots, tmp_path):
    plain, masks = roots
    meta_plain = json.load(open(osp.join(plain, 'meta.json')))
    meta_masks = json.load(open(osp.join(masks, 'meta.json')))
    # the default build is byte-identical to the one made before the option existed
    assert meta_plain['content_sha256'] == SMALL_SHA256
    assert 'with_masks' not in meta_plain['params']
    explicit = str(tmp_path / 'explicit')
    build_digits_det(explicit, with_masks=False, **SMALL)
    for rel in ['meta.json'] + [f'annotations/{s}.json' for s in SPLITS]:
        assert filecmp.cmp(osp.join(plain, rel), osp.join(explicit, rel), shallow=False), rel
    # with masks: another build (parameters, hash), the same pixels and the same boxes
    assert meta_masks['params'] == dict(meta_plain['params'], with_masks=True)
    assert meta_masks['content_sha256'] != meta_plain['content_sha256']
    for split in SPLITS:
        a, b = _load(plain, split), _load(masks, split)
        assert a['images'] == b['images']
        assert [dict(ann, segmentation=None) for ann in a['annotations']] == \
            [dict(ann, segmentation=None) for ann in b['annotations']]
        for img in a['images']:
            assert filecmp.cmp(osp.join(plain, split, img['file_name']),
                               osp.join(masks, split, img['file_name']), shallow=False)
    with pytest.raises(RuntimeError, match='with_masks'):
        build_digits_det(plain, with_masks=True, **SMALL)  # a plain folder is not a masks build
    with pytest.raises(TypeError, match='with_masks'):
        build_digits_det(str(tmp_path / 'bad'), with_masks='yes', **SMALL)


def test_dataset_loads_the_masks(roots):
    _, masks = roots
    ds = DigitsDetDataset(
        data_root=masks, build_cfg=dict(SMALL, with_masks=True),
        ann_file='annotations/train.json', data_prefix=dict(img='train/'),
        pipeline=[dict(type='LoadImageFromFile'),
                  dict(type='LoadAnnotations', with_bbox=True, with_mask=True)])
    coco = _load(masks, 'train')
    item = ds[0]
    anns = [a for a in coco['annotations'] if a['image_id'] == item['img_id']]
    want = np.stack([mask_utils.decode(_encode(a['segmentation'])) for a in anns])
    np.testing.assert_array_equal(item['gt_masks'].to_ndarray(), want)
