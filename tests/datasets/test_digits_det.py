"""Tests of the DigitsDet builder, its mmdet data set class and the demo configs."""
import filecmp
import json
import os
import os.path as osp
from collections import Counter
from itertools import combinations

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.datasets import load_digits

from mmkdcal.datasets.digits_det import (INK_THRESHOLD, DigitsDetDataset, build_digits_det,
                                         digits_det_status)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SMALL = dict(n_train=12, n_calib=4, n_val=6, seed=3)
SPLITS = ('train', 'calib', 'val')


def _load(root, split):
    with open(osp.join(root, 'annotations', f'{split}.json')) as f:
        return json.load(f)


def _gray(root, split, file_name):
    return np.array(Image.open(osp.join(root, split, file_name)))


@pytest.fixture(scope='module')
def small_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('dd') / 'digits_det')
    build_digits_det(root, **SMALL)
    return root


@pytest.fixture(scope='module')
def scans():
    d = load_digits()
    return d.images / 16.0, d.target


def test_determinism_same_seed_byte_identical(small_root, tmp_path):
    other = str(tmp_path / 'again')
    build_digits_det(other, **SMALL)
    for rel in ['meta.json'] + [f'annotations/{s}.json' for s in SPLITS]:
        assert filecmp.cmp(osp.join(small_root, rel), osp.join(other, rel), shallow=False), rel
    for split in SPLITS:
        names = sorted(os.listdir(osp.join(small_root, split)))
        assert names == sorted(os.listdir(osp.join(other, split)))
        assert len(names) == SMALL[f'n_{split}']
        for name in names:
            np.testing.assert_array_equal(_gray(small_root, split, name), _gray(other, split, name))
    # Another seed gives other content (and another hash).
    third = str(tmp_path / 'seed4')
    build_digits_det(third, **{**SMALL, 'seed': 4})
    meta = [json.load(open(osp.join(r, 'meta.json'))) for r in (small_root, third)]
    assert meta[0]['content_sha256'] != meta[1]['content_sha256']
    assert not np.array_equal(_gray(small_root, 'train', '000000.png'),
                              _gray(third, 'train', '000000.png'))


def test_rebuild_is_skipped(small_root):
    png = osp.join(small_root, 'val', '000000.png')
    before = os.stat(png).st_mtime_ns
    paths = build_digits_det(small_root, **SMALL)
    assert os.stat(png).st_mtime_ns == before
    assert paths['val_ann'] == osp.join(small_root, 'annotations', 'val.json')


def test_scans_disjoint_between_splits_and_labels_true(small_root, scans):
    _, targets = scans
    used = {}
    for split in SPLITS:
        coco = _load(small_root, split)
        used[split] = {a['source_index'] for a in coco['annotations']}
        assert used[split]
        for ann in coco['annotations']:
            # category id c+1 is digit c, and it is the true label of the scan that was pasted
            assert ann['category_id'] == int(targets[ann['source_index']]) + 1
        assert [c['name'] for c in coco['categories']] == [str(d) for d in range(10)]
        assert [c['id'] for c in coco['categories']] == list(range(1, 11))
    for a, b in combinations(SPLITS, 2):
        assert not used[a] & used[b], (a, b)
    # The pools are a stratified 60/20/20 split of all 1797 scans.
    pools = [_load(small_root, s)['info']['scan_pool_size'] for s in SPLITS]
    assert sum(pools) == 1797
    assert abs(pools[0] - 0.6 * 1797) < 10 and abs(pools[1] - 0.2 * 1797) < 10


def test_boxes_inside_canvas_and_not_overlapping(small_root):
    n_digits = []
    for split in SPLITS:
        coco = _load(small_root, split)
        by_img = {img['id']: [] for img in coco['images']}
        for ann in coco['annotations']:
            x, y, w, h = ann['bbox']
            assert x >= 0 and y >= 0 and w >= 2 and h >= 4
            assert x + w <= 128 and y + h <= 128
            assert ann['area'] == w * h and ann['iscrowd'] == 0
            by_img[ann['image_id']].append(ann['bbox'])
        for boxes in by_img.values():
            n_digits.append(len(boxes))
            for (x1, y1, w1, h1), (x2, y2, w2, h2) in combinations(boxes, 2):
                ix = min(x1 + w1, x2 + w2) - max(x1, x2)
                iy = min(y1 + h1, y2 + h2) - max(y1, y2)
                assert ix <= 0 or iy <= 0
    assert 1 <= min(n_digits) and max(n_digits) <= 6 and len(set(n_digits)) > 2


def test_boxes_hold_the_ink(small_root):
    """Inside a box the image is much brighter than in the 3-px ring around it."""
    for split in SPLITS:
        coco = _load(small_root, split)
        names = {img['id']: img['file_name'] for img in coco['images']}
        for ann in coco['annotations']:
            img = _gray(small_root, split, names[ann['image_id']]).astype(float)
            x, y, w, h = ann['bbox']
            inside = img[y:y + h, x:x + w]
            ring = np.zeros_like(img, dtype=bool)
            ring[max(y - 3, 0):y + h + 3, max(x - 3, 0):x + w + 3] = True
            ring[y:y + h, x:x + w] = False
            # The ring can touch another digit's box only at its 2-px gap: drop those pixels.
            for other in coco['annotations']:
                if other['image_id'] == ann['image_id'] and other['id'] != ann['id']:
                    ox, oy, ow, oh = other['bbox']
                    ring[oy:oy + oh, ox:ox + ow] = False
            assert inside.mean() > img[ring].mean() + 25, ann
            assert inside.max() > np.percentile(img[ring], 99) + 40, ann


def test_box_is_tight_ink_extent_of_reference_resize(small_root, scans):
    """Box size = ink extent of the scan resized by PIL's bicubic filter (+-1 px per side).

    PIL renormalises its taps at the image border where the builder replicates the edge pixel,
    so an ink edge can move by one pixel on each side.
    """
    images, _ = scans
    for split in SPLITS:
        for ann in _load(small_root, split)['annotations']:
            h, w = ann['digit_size']
            ref = Image.fromarray(images[ann['source_index']].astype(np.float32), mode='F')
            ref = np.array(ref.resize((w, h), Image.BICUBIC)) >= INK_THRESHOLD
            rows, cols = np.flatnonzero(ref.any(1)), np.flatnonzero(ref.any(0))
            assert abs(ann['bbox'][2] - (cols[-1] - cols[0] + 1)) <= 2, ann
            assert abs(ann['bbox'][3] - (rows[-1] - rows[0] + 1)) <= 2, ann
            assert 14 <= h <= 40 and 14 <= w <= 40


@pytest.mark.parametrize('n_out', [14, 23, 40])
def test_cubic_matrix_matches_pil_bicubic_away_from_border(n_out):
    from mmkdcal.datasets.digits_det import _cubic_matrix
    mine = _cubic_matrix(n_out, 8)
    pil = np.stack([
        np.array(Image.fromarray(np.eye(8, dtype=np.float32)[j:j + 1], mode='F').resize(
            (n_out, 1), Image.BICUBIC))[0] for j in range(8)], axis=1)  # (n_out, 8)
    u = (np.arange(n_out) + 0.5) * 8 / n_out - 0.5
    interior = (np.floor(u) >= 1) & (np.floor(u) + 2 <= 7)  # all four taps inside the scan
    assert interior.sum() > n_out // 2
    np.testing.assert_allclose(mine[interior], pil[interior], atol=1e-6)
    np.testing.assert_allclose(mine.sum(1), 1.0, atol=1e-12)  # partition of unity


def test_meta_counts_match_json(small_root):
    meta = json.load(open(osp.join(small_root, 'meta.json')))
    assert meta['params']['n_train'] == 12 and meta['params']['seed'] == 3
    for split in SPLITS:
        coco = _load(small_root, split)
        assert meta['counts'][split] == dict(images=len(coco['images']),
                                             boxes=len(coco['annotations']))
        assert coco['info']['params'] == meta['params']


def _dataset(root, split, **kwargs):
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('mmdet'):
        return DigitsDetDataset(
            data_root=root, build_cfg=SMALL, ann_file=f'annotations/{split}.json',
            data_prefix=dict(img=f'{split}/'),
            pipeline=[dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', with_bbox=True)],
            **kwargs)


def test_dataset_loads_through_coco_machinery(small_root):
    from mmdet.registry import DATASETS
    assert DATASETS.get('DigitsDetDataset') is DigitsDetDataset
    coco = _load(small_root, 'train')
    ds = _dataset(small_root, 'train')
    assert len(ds) == SMALL['n_train']
    assert ds.metainfo['classes'] == tuple(str(d) for d in range(10))
    labels = Counter()
    for i in range(len(ds)):
        item = ds[i]
        img_id = item['img_id']
        anns = [a for a in coco['annotations'] if a['image_id'] == img_id]
        expect = np.array([[x, y, x + w, y + h] for x, y, w, h in (a['bbox'] for a in anns)])
        np.testing.assert_array_equal(item['gt_bboxes'].tensor.numpy(), expect)
        np.testing.assert_array_equal(item['gt_bboxes_labels'],
                                      [a['category_id'] - 1 for a in anns])
        labels.update(item['gt_bboxes_labels'].tolist())
        if i == 0:
            gray = _gray(small_root, 'train', f'{img_id - 1:06d}.png')
            assert item['img'].shape == (128, 128, 3)
            for c in range(3):
                np.testing.assert_array_equal(item['img'][..., c], gray)
    assert labels == Counter(a['category_id'] - 1 for a in coco['annotations'])


def test_dataset_builds_empty_folder_on_first_use(tmp_path, small_root):
    root = str(tmp_path / 'fresh')
    ds = _dataset(root, 'val', test_mode=True)
    assert len(ds) == SMALL['n_val']
    assert digits_det_status(root, json.load(open(osp.join(root, 'meta.json')))['params'])[0] \
        == 'same'
    assert filecmp.cmp(osp.join(root, 'meta.json'), osp.join(small_root, 'meta.json'), False)
    with pytest.raises(FileNotFoundError, match='build_digits_det.py'):
        _dataset(str(tmp_path / 'empty'), 'val', auto_build=False)


def test_different_or_partial_build_fails_with_rebuild_hint(tmp_path):
    root = str(tmp_path / 'dd')
    build_digits_det(root, **SMALL)
    sha = json.load(open(osp.join(root, 'meta.json')))['content_sha256']
    with pytest.raises(RuntimeError, match=r'other parameters.*seed.*--force'):
        DigitsDetDataset(data_root=root, build_cfg={**SMALL, 'seed': 5},
                         ann_file='annotations/val.json', data_prefix=dict(img='val/'))
    with pytest.raises(RuntimeError, match='other parameters'):
        build_digits_det(root, **{**SMALL, 'n_val': 7})
    os.remove(osp.join(root, 'train', '000003.png'))
    with pytest.raises(RuntimeError, match=r'1 of 12 images are missing.*--force'):
        _dataset(root, 'train')
    build_digits_det(root, force=True, **SMALL)  # repairs it, identical to before
    assert json.load(open(osp.join(root, 'meta.json')))['content_sha256'] == sha
    assert len(_dataset(root, 'train')) == SMALL['n_train']
    # A folder with foreign files and no meta.json is refused; --force keeps foreign files.
    foreign = str(tmp_path / 'foreign')
    os.makedirs(foreign)
    open(osp.join(foreign, 'notes.txt'), 'w').write('mine')
    with pytest.raises(RuntimeError, match='no meta.json'):
        build_digits_det(foreign, **SMALL)
    build_digits_det(foreign, force=True, **SMALL)
    assert open(osp.join(foreign, 'notes.txt')).read() == 'mine'
    assert json.load(open(osp.join(foreign, 'meta.json')))['content_sha256'] == sha


def test_bad_arguments_fail_early(tmp_path):
    with pytest.raises(ValueError, match='n_train'):
        build_digits_det(str(tmp_path / 'a'), n_train=0)
    with pytest.raises(TypeError, match='seed'):
        build_digits_det(str(tmp_path / 'a'), seed=1.5)
    with pytest.raises(ValueError, match='max_digits'):
        build_digits_det(str(tmp_path / 'a'), min_digits=3, max_digits=2)
    with pytest.raises(TypeError, match='n_images'):
        DigitsDetDataset(data_root=str(tmp_path / 'b'), build_cfg=dict(n_images=3))
    with pytest.raises(ValueError, match='data_root'):
        DigitsDetDataset(data_root='', ann_file='annotations/val.json')
    assert not osp.exists(tmp_path / 'a') and not osp.exists(tmp_path / 'b')


def test_cli_builds_the_same_data(tmp_path, small_root, capsys):
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        'build_digits_det_cli', osp.join(REPO, 'tools', 'build_digits_det.py'))
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    root = str(tmp_path / 'cli')
    cli.main(['--root', root, '--n-train', '12', '--n-calib', '4', '--n-val', '6', '--seed', '3'])
    assert 'DigitsDet ready' in capsys.readouterr().out
    assert filecmp.cmp(osp.join(root, 'meta.json'), osp.join(small_root, 'meta.json'), False)
    with pytest.raises(RuntimeError, match='--force'):
        cli.main(['--root', root, '--n-train', '13', '--n-calib', '4', '--n-val', '6'])
    cli.main(['--root', root, '--n-train', '13', '--n-calib', '4', '--n-val', '6', '--force'])
    assert len(os.listdir(osp.join(root, 'train'))) == 13


# ------------------------------------------------------------------------------------------
# Configs
# ------------------------------------------------------------------------------------------
def _cfg(name):
    from mmengine.config import Config
    return Config.fromfile(osp.join(REPO, 'configs', name))


def test_base_config_evaluator_scores_ground_truth_as_perfect(small_root):
    """The base config's dataset + CocoMetric agree on classes: GT as predictions gives mAP 1."""
    from mmdet.registry import DATASETS, METRICS
    from mmengine.registry import DefaultScope
    cfg = _cfg('_base_/datasets/digits_det.py')
    assert cfg.default_scope == 'mmdet' and cfg.custom_imports.imports == ['mmkdcal']
    assert not any('Flip' in t['type'] for t in cfg.train_pipeline)
    assert cfg.calib_dataloader.dataset.ann_file == 'annotations/calib.json'
    data_root = small_root + '/'
    ds_cfg = cfg.val_dataloader.dataset
    ds_cfg.update(data_root=data_root, build_cfg=SMALL)
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        dataset = DATASETS.build(ds_cfg)
    assert [m['type'] for m in cfg.val_evaluator] == ['CocoMetric', 'DetectionCalibrationMetric']
    metric_cfg = cfg.val_evaluator[0]
    metric_cfg.ann_file = data_root + 'annotations/val.json'
    metric = METRICS.build(metric_cfg)
    metric.dataset_meta = dataset.metainfo
    samples = []
    for i in range(len(dataset)):
        item = dataset[i]
        gt = item['data_samples'].gt_instances
        n = len(gt)
        samples.append(dict(img_id=item['data_samples'].img_id,
                            ori_shape=item['data_samples'].ori_shape,
                            pred_instances=dict(bboxes=gt.bboxes.tensor, labels=gt.labels,
                                                scores=torch.linspace(0.9, 0.8, n))))
    metric.process({}, samples)
    result = metric.evaluate(len(samples))
    assert result['coco/bbox_mAP'] == pytest.approx(1.0)
    # Shifting every label by one class must destroy the score.
    metric2 = METRICS.build(metric_cfg)
    metric2.dataset_meta = dataset.metainfo
    for s in samples:
        s['pred_instances']['labels'] = (s['pred_instances']['labels'] + 1) % 10
    metric2.process({}, samples)
    assert metric2.evaluate(len(samples))['coco/bbox_mAP'] == pytest.approx(0.0)


def test_demo_teacher_and_student_share_head_layout():
    from mmdet.registry import MODELS
    torch.manual_seed(0)
    teacher_cfg, student_cfg = _cfg('demo/gfl_r18w32_digits.py'), _cfg('demo/gfl_r18w16_digits.py')
    for cfg in (teacher_cfg, student_cfg):
        assert cfg.model.backbone.init_cfg is None and cfg.train_cfg.type == 'IterBasedTrainLoop'
        assert cfg.train_cfg.val_interval == cfg.train_cfg.max_iters
    for key in ('anchor_generator', 'reg_max', 'num_classes'):
        assert teacher_cfg.model.bbox_head[key] == student_cfg.model.bbox_head[key]
    assert teacher_cfg.model.bbox_head.num_classes == 10
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('mmdet'):
        teacher, student = MODELS.build(teacher_cfg.model), MODELS.build(student_cfg.model)
    n_t = sum(p.numel() for p in teacher.parameters())
    n_s = sum(p.numel() for p in student.parameters())
    assert n_t > 3 * n_s
    x = torch.rand(2, 3, 128, 128)
    with torch.no_grad():
        out_t = teacher.bbox_head(teacher.extract_feat(x))
        out_s = student.bbox_head(student.extract_feat(x))
    for level_t, level_s in zip(out_t, out_s):  # (cls_scores, bbox_preds) per level
        assert [o.shape for o in level_t] == [o.shape for o in level_s]
    assert [o.shape[-1] for o in out_t[0]] == [16, 8, 4]  # strides 8/16/32 on 128 px
    assert out_t[0][0].shape[1] == 10 and out_t[1][0].shape[1] == 4 * (16 + 1)
