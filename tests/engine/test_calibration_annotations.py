"""The calibration pass counts the boxes its annotation file loses, and why; partly invalid files
warn (above 2 %) or are refused (above 20 %), through ``tools/train.py`` and the calibration hook.
"""
import copy
import importlib.util
import json
import os
import os.path as osp

import pytest
import torch
from mmengine.config import ConfigDict

from mmdet.registry import DATASETS, MODELS
from mmkdcal.engine.calibration_annotations import (CalibrationAnnotationError,
                                                    audit_annotations)
from mmkdcal.engine.calibration_modes import GroundTruthIndex
from _helpers import CLASSES, ROOT, dump_config, gfl_model, train_config, write_coco


def _hand_made(path):
    """Ten annotations on two 64x64 images, each kind counted by hand below."""
    anns = [
        dict(bbox=[10, 10, 20, 20], category_id=1),             # used
        dict(bbox=[0, 0, 64, 64], category_id=2),               # used
        dict(bbox=[70, 10, 10, 10], category_id=1),             # outside (right of the image)
        dict(bbox=[-30, 5, 20, 20], category_id=3),             # outside (left of it)
        dict(bbox=[5, 5, 0.5, 10], category_id=1),              # zero area: width < 1 px
        dict(bbox=[5, 5, 10, 10], category_id=2, area=0),       # zero area: area 0
        dict(bbox=[5, 5, 10, 10], category_id=2, ignore=1),    # marked ignore
        dict(bbox=[5, 5, 10, 10], category_id=3, iscrowd=1),   # crowd: kept, ignored
        dict(bbox=[5, 5, 10, 10], category_id=99),             # not one of the classes
        dict(bbox=[30, 30, 5, 5], category_id=3),               # used
    ]
    for i, a in enumerate(anns):
        a.setdefault('area', a['bbox'][2] * a['bbox'][3])
        a.setdefault('iscrowd', 0)
        a.update(id=i + 1, image_id=1 + i % 2)
    coco = dict(images=[dict(id=1, file_name='a.png', width=64, height=64),
                        dict(id=2, file_name='b.png', width=64, height=64)],
                annotations=anns,
                categories=[dict(id=i + 1, name=n) for i, n in enumerate(CLASSES)]
                + [dict(id=99, name='other')])
    with open(path, 'w') as f:
        json.dump(coco, f)
    return path


def test_counts_by_reason_match_hand_counts_and_mmdets_loader(tmp_path):
    ann = _hand_made(str(tmp_path / 'ann.json'))
    audit = audit_annotations(ann, cat_ids=[1, 2, 3])
    assert (audit.total, audit.outside, audit.zero_area, audit.marked_ignore, audit.crowd,
            audit.other_category, audit.used) == (10, 2, 2, 1, 1, 1, 3)
    assert audit.describe() == (
        f'{ann}: of 10 boxes, 3 are used; 2 outside their image, 2 of zero area (or a side '
        "under 1 pixel), 1 marked 'ignore', 1 of a category that is not one of the dataset's "
        'classes, 1 crowd regions (kept as ignored)')
    # the reference: what mmdet's CocoDataset keeps of the same file
    dataset = DATASETS.build(dict(type='CocoDataset', ann_file=ann, metainfo=dict(classes=CLASSES),
                                  data_prefix=dict(img=''), pipeline=[], test_mode=True))
    flags = [i['ignore_flag'] for k in range(len(dataset))
             for i in dataset.get_data_info(k)['instances']]
    assert flags.count(0) == audit.used and flags.count(1) == audit.crowd


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    return write_coco(str(tmp_path_factory.mktemp('calib_anns')), n_images=4)


def _spoil(data, name, every):
    """A copy of the data's annotations with every ``every``-th box moved off its image."""
    with open(osp.join(data['root'], data['ann'])) as f:
        coco = json.load(f)
    moved = 0
    for i, a in enumerate(coco['annotations']):
        if i % every == 0:
            a['bbox'][0] += 1000
            moved += 1
    with open(osp.join(data['root'], name), 'w') as f:
        json.dump(coco, f)
    return osp.join(data['root'], name), moved, len(coco['annotations'])


def _kd_cal(tmp_path, data, ann_file):
    teacher_cfg = gfl_model(width=8)
    torch.manual_seed(1)
    teacher = MODELS.build(ConfigDict(copy.deepcopy(teacher_cfg)))
    teacher.init_weights()
    t_cfg = dump_config(dict(model=teacher_cfg), str(tmp_path / 'teacher.py'))
    ckpt = str(tmp_path / 'teacher.pth')
    torch.save({'state_dict': teacher.state_dict()}, ckpt)
    student = gfl_model(width=8)
    student.update(type='DistillSingleStageDetector', teacher_config=t_cfg, teacher_ckpt=ckpt,
                   distill_losses=dict(loss_kd=dict(type='BinaryKDLoss', inputs='cls')))
    calib = train_config(gfl_model(), data)['val_dataloader']
    calib['dataset']['ann_file'] = ann_file
    cfg = train_config(student, data, max_iters=1, custom_hooks=[dict(
        type='TeacherCalibrationHook', fit_on='anchors', dataloader=calib)])
    cfg['train_cfg']['val_interval'] = 100
    return dump_config(cfg, str(tmp_path / 'kd_cal.py'))


def _train(argv):
    spec = importlib.util.spec_from_file_location('_tool_train_calib_anns',
                                                  osp.join(ROOT, 'tools', 'train.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main(argv)


@pytest.mark.parametrize('every', [2, 1])
def test_half_or_all_boxes_outside_their_images_are_refused_with_the_counts(data, tmp_path,
                                                                            every):
    ann, moved, total = _spoil(data, f'every_{every}.json', every)
    work = str(tmp_path / 'work')
    with pytest.raises(CalibrationAnnotationError) as err:
        _train([_kd_cal(tmp_path, data, ann), '--work-dir', work])
    msg = str(err.value)
    assert f'{ann}: of {total} boxes, {total - moved} are used; {moved} outside their image' \
        in msg
    assert f'{moved / total:.0%} of the calibration boxes are invalid' in msg
    assert not any(n.endswith('.pth') for n in os.listdir(work))  # before any iteration


def test_a_few_invalid_boxes_warn_and_calibration_goes_on(data, tmp_path, capfd):
    ann, moved, total = _spoil(data, 'one_off.json', 1000)  # the first box only
    assert moved == 1 and 0.02 < 1 / total <= 0.2
    work = str(tmp_path / 'work')
    _train([_kd_cal(tmp_path, data, ann), '--work-dir', work])
    out = capfd.readouterr()
    assert (f'{1 / total:.1%} of the calibration boxes are invalid and are left out ({ann}: of '
            f'{total} boxes, {total - 1} are used; 1 outside their image)') in out.out + out.err
    assert osp.isfile(osp.join(work, 'iter_1.pth'))


def test_no_usable_box_says_what_was_dropped(tmp_path):
    """Below the refusal share (crowd and ignored boxes are not invalid), a file without one usable
    box still fails, and the message counts what the file held instead of a bare "0 boxes"."""
    ann = _hand_made(str(tmp_path / 'ann.json'))
    with open(ann) as f:
        coco = json.load(f)
    coco['annotations'] = [a for a in coco['annotations'] if a.get('iscrowd') or a.get('ignore')]
    with open(ann, 'w') as f:
        json.dump(coco, f)
    dataset = DATASETS.build(dict(type='CocoDataset', ann_file=ann, metainfo=dict(classes=CLASSES),
                                  data_prefix=dict(img=''), pipeline=[], test_mode=True))
    with pytest.raises(ValueError) as err:
        GroundTruthIndex(dataset)
    assert str(err.value).endswith(
        f"0 boxes): calibrating needs annotated objects; check its ann_file. {ann}: of 2 boxes, "
        "0 are used; 1 marked 'ignore', 1 crowd regions (kept as ignored).")
