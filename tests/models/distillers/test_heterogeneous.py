"""Teachers of another head family: stride pairing, soft targets, refusals, toy trainings."""
import copy
import functools
import inspect
import json
import math
import os.path as osp
from types import SimpleNamespace

import pytest
import torch
from mmengine.config import Config, ConfigDict
from mmengine.logging import MessageHub
from mmengine.runner import Runner
from mmengine.structures import InstanceData

from mmdet.registry import MODELS

import mmkdcal  # noqa: F401
from mmkdcal.engine import default_fit_on
from mmkdcal.engine.hooks import TeacherCalibrationHook
from mmkdcal.models.distillers.heterogeneous import (calibrated_scores, feature_strides,
                                                     pair_by_stride, pred_kd_problem,
                                                     teacher_detections)
from mmkdcal.models.distillers.taps import OutputTaps

from _detr_helpers import deformable_detr_model, detr_distiller, detr_model
from _families import input_size, tiny_model
from _helpers import batch as _batch
from _helpers import distiller as _distiller
from _helpers import (faster_rcnn_model, gfl_model, last_checkpoint, retinanet_model, save_teacher,
                      train_config, write_coco)

torch.set_num_threads(1)
NECK = dict(loss_fit=dict(type='FeatureMSELoss', inputs='neck'))
PRED = dict(loss_pc=dict(type='BinaryKDLoss', beta=2.0, inputs='pred_cls'),
            loss_pb=dict(type='BoxKDLoss', l1_weight=0.0, giou_weight=1.0, inputs='pred_box'))


def shifted_retina(declared, start_level=1, width=16):
    """A RetinaNet whose FPN starts at backbone stride 8 * 2**start_level (its real strides),
    with anchors declared at ``declared``."""
    cfg = retinanet_model(strides=declared)
    cfg['neck'].update(start_level=start_level, out_channels=width)
    cfg['bbox_head'].update(in_channels=width)
    return cfg


# ---------------------------------------------------------------------------------- strides
@pytest.mark.parametrize('student, teacher, pairs', [
    ([8, 16, 32], [4, 8, 16, 32, 64], [(0, 1), (1, 2), (2, 3)]),
    ([8, 16, 32], [16, 32, 64], [(1, 0), (2, 1)]),
    ([8, 16, 32, 64, 128], [32], [(2, 0)]),
    ([4], [8, 16], []),
])
def test_pair_by_stride_on_planted_tables(student, teacher, pairs):
    assert pair_by_stride(student, teacher) == pairs


def test_feature_strides_of_each_kind():
    def gen(*strides):
        return SimpleNamespace(strides=[(s, s) for s in strides])

    dense = SimpleNamespace(bbox_head=SimpleNamespace(prior_generator=gen(8, 16, 32, 64, 128)))
    assert feature_strides(dense) == [8, 16, 32, 64, 128]
    rpn = SimpleNamespace(rpn_head=SimpleNamespace(prior_generator=gen(4, 8, 16, 32, 64)))
    assert feature_strides(rpn) == [4, 8, 16, 32, 64]
    no_rpn = SimpleNamespace(roi_head=SimpleNamespace(
        bbox_roi_extractor=SimpleNamespace(featmap_strides=[4, 8, 16, 32])))
    assert feature_strides(no_rpn) == [4, 8, 16, 32]
    # DETR family: ResNet stage i has stride 4 * 2**i; out_indices (2, 3) -> 16, 32, and each
    # level the neck adds halves the last one
    assert feature_strides(MODELS.build(ConfigDict(deformable_detr_model()))) == [16, 32]
    three = deformable_detr_model()
    three['neck']['num_outs'] = three['num_feature_levels'] = 3
    for attn in (three['encoder']['layer_cfg']['self_attn_cfg'],
                 three['decoder']['layer_cfg']['cross_attn_cfg']):
        attn['num_levels'] = 3
    assert feature_strides(MODELS.build(ConfigDict(three))) == [16, 32, 64]
    assert feature_strides(MODELS.build(ConfigDict(detr_model()))) == [32]
    assert feature_strides(SimpleNamespace(bbox_head=None)) is None


# ---------------------------------------------------------------------------------- feature KD
def test_neck_levels_are_paired_by_stride_with_an_adapter(tmp_path):
    # teacher levels at strides 16, 32, 64 (FPN from the backbone's stride-16 output), 24 wide;
    # student GFL at 8, 16, 32: its levels 1, 2 meet the teacher's levels 0, 1
    t_path, t_ckpt, _ = save_teacher(shifted_retina((16, 32, 64), width=24), tmp_path)
    seen = []
    model = _distiller(gfl_model(width=8), t_path, t_ckpt, teacher_temperature=1.0,
                       distill_losses=dict(loss_fit=dict(type='FeatureMSELoss', inputs='neck',
                                                         student_channels=16,
                                                         teacher_channels=24)))
    assert model.hetero.level_pairs == ((1, 0), (2, 1))
    model.distill_losses['loss_fit'].register_forward_hook(
        lambda m, args, out: seen.append((args[0], args[1])))
    data = _batch(model, n=2, size=64)
    model.loss(data['inputs'], data['data_samples'])
    with torch.no_grad():
        s_feats = model.extract_feat(data['inputs'])
        t_feats = model.teacher.extract_feat(data['inputs'])
    assert len(seen) == 2
    for (s, t), i, j in zip(seen, (1, 2), (0, 1)):
        assert torch.allclose(s, s_feats[i], atol=1e-5) and torch.equal(t, t_feats[j])
        size = 64 // (8 * 2 ** i)  # the student's stride at level i
        assert s.shape[1:] == (16, size, size) and t.shape[1:] == (24, size, size)


def test_refusals_name_the_pair_and_print_both_stride_tables(tmp_path):
    t_path, t_ckpt, _ = save_teacher(shifted_retina((64, 128, 256)), tmp_path)
    with pytest.raises(ValueError, match=r'(?s)no neck level of the student has the stride.*'
                                         r'student \(DistillGFL\) level: stride = \{0: 8, 1: 16, '
                                         r'2: 32\}.*teacher \(RetinaNet\) level: stride = '
                                         r'\{0: 64, 1: 128, 2: 256\}'):
        _distiller(gfl_model(width=8), t_path, t_ckpt, teacher_temperature=1.0,
                   distill_losses=NECK, type='DistillGFL')
    # declared strides that do not fit the real maps are caught at the first step
    w_path, w_ckpt, _ = save_teacher(shifted_retina((8, 16, 32)), tmp_path, 'wrong')
    model = _distiller(gfl_model(width=8), w_path, w_ckpt, teacher_temperature=1.0,
                       distill_losses=NECK)
    data = _batch(model, n=1, size=64)
    with pytest.raises(ValueError, match=r'student level 0 is \(8, 8\) but teacher level 0, of '
                                         r'the same declared stride, is \(4, 4\)'):
        model.loss(data['inputs'], data['data_samples'])
    # a two-stage student with a dense teacher: neck KD and its detections at the RoIs
    g_path, g_ckpt, _ = save_teacher(gfl_model(width=8), tmp_path, 'gfl')
    with pytest.raises(ValueError, match=r"teacher GFLHead / student StandardRoIHead: neck-"
                                         r"feature KD \(by stride\) and prediction KD .* "
                                         r"allowed, inputs \['neck', 'roi_pred_cls', "
                                         r"'roi_pred_box'\]; inputs='roi_cls' needs the same"):
        _distiller(faster_rcnn_model(), g_path, g_ckpt, teacher_temperature=1.0,
                   distill_losses=dict(loss_kd=dict(type='KDLoss', inputs='roi_cls')))
    # a two-stage teacher of a dense student is calibrated on its detection scores, which teach
    f_path, f_ckpt, _ = save_teacher(faster_rcnn_model(), tmp_path, 'frcnn')
    model = _distiller(gfl_model(width=8), f_path, f_ckpt, distill_losses=NECK)
    assert default_fit_on(model.teacher) == 'rois'
    assert TeacherCalibrationHook()._resolve_fit_on(model) == 'detections'
    with pytest.raises(ValueError, match="fit_on='rois', but the teacher is of another head "
                                         "family and teaches by its detections"):
        TeacherCalibrationHook(fit_on='rois')._resolve_fit_on(model)
    # a teacher with other classes: no prediction KD
    o_path, o_ckpt, _ = save_teacher(gfl_model(width=8, num_classes=4), tmp_path, 'gfl4')
    with pytest.raises(ValueError, match=r"KD \(by stride\) allowed \(no prediction KD: the "
                                         r"teacher predicts 4 classes, the student 3\), inputs "
                                         r"\['neck'\]; inputs='pred_cls'"):
        _distiller(retinanet_model(), o_path, o_ckpt, teacher_temperature=1.0,
                   distill_losses=dict(loss_p=dict(type='BinaryKDLoss', inputs='pred_cls')))


# ---------------------------------------------------------------------------------- soft targets
def one_anchor_retina():
    """RetinaNet, one level (stride 8), one 32 x 32 anchor per location, centred on (8x, 8y)."""
    cfg = retinanet_model(strides=(8, ))
    cfg['neck'].update(num_outs=1, end_level=0)
    cfg['bbox_head']['anchor_generator'].update(octave_base_scale=4, scales_per_octave=1,
                                                ratios=[1.0])
    return cfg


def plant_detections(model, planted):
    """The teacher's detections, per image (boxes (D, 4), scores, labels), instead of its own."""
    def predict(inputs, samples, rescale):
        for s, (box, scores, labels) in zip(samples, planted):
            s.pred_instances = InstanceData(bboxes=box.clone(), scores=torch.tensor(scores),
                                            labels=torch.tensor(labels))
        return samples

    object.__setattr__(model.teacher, 'predict', predict)


def test_soft_targets_at_the_priors_the_student_assigns_to_a_planted_teacher_box(tmp_path):
    t_path, t_ckpt, _ = save_teacher(gfl_model(width=8), tmp_path)
    seen = {}
    model = _distiller(one_anchor_retina(), t_path, t_ckpt, teacher_temperature=2.0,
                       distill_losses=dict(
                           loss_pc=dict(type='BinaryKDLoss', inputs='pred_cls'),
                           loss_pb=dict(type='BoxKDLoss', giou_weight=1.0, inputs='pred_box')))
    # calibration: sigmoid(logit(0.8) / 2) = 1 / (1 + sqrt(0.2 / 0.8)) = 2 / 3, and
    # sigmoid(logit(0.2) / 2) = 1 / (1 + sqrt(0.8 / 0.2)) = 1 / 3
    assert calibrated_scores(model, torch.tensor([0.8, 0.2]), torch.tensor([2, 0])).tolist() == \
        pytest.approx([2 / 3, 1 / 3], abs=1e-6)
    # image 0: box A, class 2, score 0.8; image 1: box B (A shifted 4 px right), class 0, 0.2
    boxes = (torch.tensor([[8., 8., 40., 40.]]), torch.tensor([[12., 8., 44., 40.]]))
    plant_detections(model, ((boxes[0], [0.8], [2]), (boxes[1], [0.2], [0])))
    for name in ('loss_pc', 'loss_pb'):
        model.distill_losses[name].register_forward_hook(
            lambda m, args, kwargs, out, name=name: seen.update({name: (args, kwargs)}),
            with_kwargs=True)
    data = _batch(model, n=2, size=64)
    model.loss(data['inputs'], data['data_samples'])
    # An 8 x 8 grid of 32 px anchors (grid cell (y, x) centred on (8x, 8y)); a box of size 32
    # whose centre is (dx, dy) from an anchor's has IoU (32-|dx|)(32-|dy|) / (2048 - that);
    # MaxIoUAssigner: positive >= 0.5, ignored in [0.4, 0.5), negative < 0.4.
    # Box A (centre (24, 24)): IoU 1 at cell (3, 3), 0.6 one cell away along x or y (positive),
    # 0.39 diagonally, 0.33 two cells away: 5 positives, none ignored, 64 rows kept.
    # Box B (centre (28, 24)): 0.78 at cells (3, 3), (3, 4) (positive); 0.49 at (2, 3), (2, 4),
    # (4, 3), (4, 4) and 0.45 at (3, 2), (3, 5) (ignored: no row); the rest below 0.31.
    (s_cls, t_cls), kw = seen['loss_pc']
    assert s_cls.shape == t_cls.shape == (64 + 58, 3)
    image0 = torch.zeros(64, 3)
    for y, x in ((3, 3), (3, 2), (3, 4), (2, 3), (4, 3)):
        image0[y * 8 + x, 2] = 2 / 3
    image1 = torch.zeros(64, 3)
    image1[[3 * 8 + 3, 3 * 8 + 4], 0] = 1 / 3
    ignored = [y * 8 + x for y, x in ((2, 3), (2, 4), (4, 3), (4, 4), (3, 2), (3, 5))]
    kept = [i for i in range(64) if i not in ignored]
    assert torch.allclose(t_cls.sigmoid(), torch.cat([image0, image1[kept]]), atol=1e-5)
    assert kw['avg_factor'].item() == 5 + 2
    (s_box, t_box), kw = seen['loss_pb']
    assert s_box.shape == t_box.shape == (7, 4)
    assert torch.equal(t_box, torch.cat([boxes[0].expand(5, 4), boxes[1].expand(2, 4)]))
    assert torch.allclose(kw['weight'], torch.tensor([2 / 3] * 5 + [1 / 3] * 2))


# ------------------------------------------------------------------- the student's own rule
def hetero_student(family, **head):
    """A stock family at test size with the teacher's (``gfl_model``) normalisation."""
    cfg = tiny_model(family)
    cfg['data_preprocessor'] = gfl_model()['data_preprocessor']
    cfg['bbox_head'].update(head)
    return cfg


def spy_assign(monkeypatch, klass, calls):
    """Record every ``klass.assign`` call as (assigner, bound arguments, result)."""
    original = klass.assign

    @functools.wraps(original)
    def assign(self, *args, **kwargs):
        result = original(self, *args, **kwargs)
        bound = inspect.signature(original).bind(self, *args, **kwargs).arguments
        calls.append((self, bound, result))
        return result

    monkeypatch.setattr(klass, 'assign', assign)


TEACHER_BOXES = (torch.tensor([[8., 8., 40., 40.], [20., 4., 60., 30.]]),
                 torch.tensor([[12., 8., 44., 40.]]))
TEACHER_LABELS = ([2, 0], [1])


def on_teacher_boxes(calls):
    """The recorded assignments of the teacher's boxes (the student's own loss assigns the
    batch's boxes too)."""
    return [c for c in calls if any(c[1]['gt_instances'].bboxes.shape == b.shape and torch.equal(
        c[1]['gt_instances'].bboxes, b) for b in TEACHER_BOXES)]


@pytest.mark.parametrize('family, epoch, assigners', [
    ('rtmdet', 0, ['assigner']), ('yolox', 0, ['assigner']),
    ('tood', 0, ['initial_assigner']), ('tood', 4, ['alignment_assigner']),
    ('ddod', 0, ['cls_assigner', 'reg_assigner']), ('yolof', 0, ['assigner']),
    ('vfnet', 0, ['assigner'])])
def test_the_students_assigner_gets_its_detached_predictions_and_the_teacher_boxes(
        tmp_path, monkeypatch, family, epoch, assigners):
    t_path, t_ckpt, _ = save_teacher(gfl_model(width=8), tmp_path)
    student = hetero_student(family)
    if family == 'ddod':  # class and box assigners that differ, so that each one's role shows
        student['train_cfg']['reg_assigner']['topk'] = 3
    model = _distiller(student, t_path, t_ckpt, teacher_temperature=2.0, distill_losses=PRED)
    head = model.bbox_head
    plant_detections(model, [(b, [0.8] * len(b), labels)
                             for b, labels in zip(TEACHER_BOXES, TEACHER_LABELS)])
    MessageHub.get_current_instance().update_info('epoch', epoch)  # TOOD: initial_epoch 4
    calls, seen = [], {}
    for klass in {type(getattr(head, name)) for name in assigners}:
        spy_assign(monkeypatch, klass, calls)
    for name in ('loss_pc', 'loss_pb'):
        model.distill_losses[name].register_forward_hook(
            lambda m, args, kw, out, name=name: seen.update({name: (args, kw)}), with_kwargs=True)
    data = _batch(model, n=2, size=input_size(family))
    with OutputTaps() as taps:
        taps.module_output('head', head)
        model.loss(data['inputs'], data['data_samples'])
    kd = on_teacher_boxes(calls)
    # the reference: the head's own loss on the same outputs, the teacher's boxes as its gts
    gts = [InstanceData(bboxes=b, labels=torch.tensor(labels))
           for b, labels in zip(TEACHER_BOXES, TEACHER_LABELS)]
    calls.clear()
    head.loss_by_feat(*taps['head'][0], batch_gt_instances=gts,
                      batch_img_metas=[s.metainfo for s in data['data_samples']])
    own = list(calls)
    assert [type(c[0]) for c in kd] == [type(c[0]) for c in own]
    assert [c[0] for c in kd] == [getattr(head, name) for name in assigners for _ in range(2)]
    for (_, got, got_result), (_, ref, ref_result) in zip(kd, own):
        pred, ref_pred = got['pred_instances'], ref['pred_instances']
        assert set(pred.keys()) == set(ref_pred.keys()) >= {'priors'}
        for key in ref_pred.keys():
            assert not getattr(pred, key).requires_grad
            assert torch.allclose(getattr(pred, key), getattr(ref_pred, key))
        assert torch.equal(got['gt_instances'].bboxes, ref['gt_instances'].bboxes)
        assert torch.equal(got['gt_instances'].labels, ref['gt_instances'].labels)
        assert torch.equal(got_result.gt_inds, ref_result.gt_inds)
    if epoch == 4 or family in ('rtmdet', 'yolox', 'ddod'):  # the student's own predictions
        assert {'scores', 'bboxes'} <= set(kd[0][1]['pred_instances'].keys())
    # the KD targets follow those assignments: the class assigner's positives, the box ones'
    n_cls = sum(int((c[2].gt_inds > 0).sum()) for c in kd[:2])
    n_box = sum(int((c[2].gt_inds > 0).sum()) for c in kd[-2:])
    assert n_cls > 0 and seen['loss_pc'][1]['avg_factor'].item() == n_cls
    assert (n_box != n_cls) == (family == 'ddod')
    assert seen['loss_pb'][0][0].shape == (n_box, 4)
    # and its boxes are decoded as the head decodes them for its assigner
    if family == 'vfnet':  # ATSS assigns its anchors; its loss decodes the refined distances
        reg = taps['head'][0][2]
        points = torch.cat(head.prior_generator.grid_priors([r.shape[-2:] for r in reg],
                                                            device='cpu'))
        decoded = [head.bbox_coder.decode(points, torch.cat([
            r[i].permute(1, 2, 0).reshape(-1, 4) for r in reg]))[c[2].gt_inds > 0]
            for i, c in enumerate(own[-2:])]
    else:  # decoded for the assigner (YOLOF: decoder_priors)
        key = 'decoder_priors' if family == 'yolof' else 'bboxes'
        decoded = [getattr(c[1]['pred_instances'], key, None) for c in own[-2:]]
        decoded = [d[c[2].gt_inds > 0] for d, c in zip(decoded, own[-2:]) if d is not None]
    if decoded:
        assert torch.allclose(seen['loss_pb'][0][0].detach(), torch.cat(decoded), atol=1e-4)


def test_priors_outside_an_images_valid_area_teach_nothing_as_in_the_heads_loss(
        tmp_path, monkeypatch):
    t_path, t_ckpt, _ = save_teacher(gfl_model(width=8), tmp_path)
    model = _distiller(hetero_student('rtmdet'), t_path, t_ckpt, teacher_temperature=2.0,
                       distill_losses=PRED)
    plant_detections(model, [(b, [0.8] * len(b), labels)
                             for b, labels in zip(TEACHER_BOXES, TEACHER_LABELS)])
    calls, seen = [], {}
    spy_assign(monkeypatch, type(model.bbox_head.assigner), calls)
    model.distill_losses['loss_pc'].register_forward_hook(
        lambda m, args, out: seen.update(args=args))
    data = _batch(model, n=2, size=64)
    data['data_samples'][1].set_metainfo(dict(pad_shape=(32, 64)))  # image 1: its top half
    with OutputTaps() as taps:
        taps.module_output('head', model.bbox_head)
        model.loss(data['inputs'], data['data_samples'])
    kd = on_teacher_boxes(calls)
    # 8 x 8, 4 x 4, 2 x 2 points at y = stride * row: image 1 keeps rows y < 32 (4, 2, 1 rows)
    assert [len(c[1]['pred_instances'].priors) for c in kd] == [84, 32 + 8 + 2]
    s_cls, t_cls = seen['args']
    assert s_cls.shape == t_cls.shape == (84 + 42, 3)
    cls = torch.cat([c[1].permute(1, 2, 0).reshape(-1, 3) for c in taps['head'][0][0]])
    points = torch.cat(model.bbox_head.prior_generator.grid_priors(
        [(8, 8), (4, 4), (2, 2)], device='cpu'))
    assert torch.equal(s_cls[84:], cls[points[:, 1] < 32])
    gt_inds = kd[1][2].gt_inds
    expect = torch.zeros(42, 3)
    expect[gt_inds > 0, TEACHER_LABELS[1][0]] = 2 / 3  # sigmoid(logit(0.8) / 2)
    assert (gt_inds > 0).any() and torch.allclose(t_cls[84:].sigmoid(), expect, atol=1e-5)


@pytest.mark.parametrize('family, head', [
    ('fcos', dict(norm_on_bbox=True, center_sampling=False)),
    ('vfnet', dict(use_atss=False, center_sampling=False))])  # VFNet: FCOS targets, no ATSS
def test_points_inside_a_teacher_box_and_its_range_get_the_calibrated_score(
        tmp_path, family, head):
    t_path, t_ckpt, _ = save_teacher(gfl_model(width=8), tmp_path)
    model = _distiller(hetero_student(family, **head), t_path, t_ckpt, teacher_temperature=2.0,
                       distill_losses=PRED)
    assert model.bbox_head.prior_generator.offset == 0.5  # points at s (i + 1/2), as FCOS's
    boxes = (torch.tensor([[8., 8., 40., 40.]]), torch.tensor([[16., 16., 112., 112.]]))
    plant_detections(model, ((boxes[0], [0.8], [2]), (boxes[1], [0.2], [0])))
    seen = {}
    for name in ('loss_pc', 'loss_pb'):
        model.distill_losses[name].register_forward_hook(
            lambda m, args, kw, out, name=name: seen.update({name: (args, kw)}), with_kwargs=True)
    data = _batch(model, n=2, size=128)
    with OutputTaps() as taps:
        taps.module_output('neck', model.neck)
        model.loss(data['inputs'], data['data_samples'])
    # Points at stride s sit at s (i + 1/2): 4 + 8 i on level 0 (16 x 16, regress range
    # [-1, 64]), 8 + 16 i on level 1 (8 x 8, [64, 128]), then 4 x 4, 2 x 2, 1 x 1 (ranges from
    # 128). A point takes a box it lies inside when its largest side distance is in the range.
    # Box A (8..40): level 0 at 12, 20, 28, 36 (i = 1..4; distances <= 28) in x and y: 16.
    # Box B (16..112): level 0 where both x and y are in [48, 80] (i = 6..9): 16; level 1
    # inside (i = 1..6) where x or y is at 24, 40, 88 or 104 (distance 88 or 72 >= 64): 32 of 36.
    levels = [(16, 8), (8, 16), (4, 32), (2, 64), (1, 128)]
    expect = [torch.zeros(sum(n * n for n, _ in levels), 3) for _ in range(2)]
    for y in range(1, 5):
        for x in range(1, 5):
            expect[0][y * 16 + x, 2] = 2 / 3  # sigmoid(logit(0.8) / 2)
    for y in range(6, 10):
        for x in range(6, 10):
            expect[1][y * 16 + x, 0] = 1 / 3  # sigmoid(logit(0.2) / 2)
    for y in range(1, 7):
        for x in range(1, 7):
            if not (x in (3, 4) and y in (3, 4)):
                expect[1][256 + y * 8 + x, 0] = 1 / 3
    (s_cls, t_cls), kw = seen['loss_pc']
    assert t_cls.shape == (2 * 341, 3)
    assert torch.allclose(t_cls.sigmoid(), torch.cat(expect), atol=1e-5)
    assert kw['avg_factor'].item() == 16 + 16 + 32
    # boxes: the head's own eval-mode decoding (distances x stride at the point), reference
    (s_box, t_box), kw = seen['loss_pb']
    assert torch.equal(t_box, torch.cat([boxes[0].expand(16, 4), boxes[1].expand(48, 4)]))
    head = model.bbox_head.eval()
    with torch.no_grad():
        reg = head(taps['neck'][0])[1]
    points = torch.cat(head.prior_generator.grid_priors([r.shape[-2:] for r in reg], device='cpu'))
    ref = [head.bbox_coder.decode(points, torch.cat([r[i].permute(1, 2, 0).reshape(-1, 4)
                                                     for r in reg])) for i in range(2)]
    pos = [e.amax(1) > 0 for e in expect]
    assert torch.allclose(s_box, torch.cat([ref[i][pos[i]] for i in range(2)]), atol=1e-4)


def test_fovea_points_take_the_box_its_own_targets_give_decoded_by_its_base_edges(tmp_path):
    t_path, t_ckpt, _ = save_teacher(gfl_model(width=8), tmp_path)
    model = _distiller(hetero_student('fovea'), t_path, t_ckpt, teacher_temperature=2.0,
                       distill_losses=PRED)
    head, seen = model.bbox_head, {}
    plant_detections(model, [(b, [0.8] * len(b), labels)
                             for b, labels in zip(TEACHER_BOXES, TEACHER_LABELS)])
    for name in ('loss_pc', 'loss_pb'):
        model.distill_losses[name].register_forward_hook(
            lambda m, args, kw, out, name=name: seen.update({name: (args, kw)}), with_kwargs=True)
    data = _batch(model, n=2, size=128)
    with OutputTaps() as taps:
        taps.module_output('head', head)
        model.loss(data['inputs'], data['data_samples'])
    # the reference: the head's own targets with the teacher's boxes as its gts; each image's
    # labels differ, so a point's label names its box
    cls, reg = taps['head'][0]
    sizes = [c.shape[-2:] for c in cls]
    points = head.prior_generator.grid_priors(sizes, device='cpu')
    gts = [InstanceData(bboxes=b, labels=torch.tensor(labels))
           for b, labels in zip(TEACHER_BOXES, TEACHER_LABELS)]
    own = head.get_targets(gts, sizes, points)[0].split([2 * len(p) for p in points])
    own = [torch.cat([lvl.view(2, -1)[i] for lvl in own]) for i in range(2)]
    expect, boxes, decoded = [], [], []
    for i, labels in enumerate(own):
        pos = labels < 3
        target = torch.zeros(len(labels), 3)
        target[pos, labels[pos]] = 2 / 3  # sigmoid(logit(0.8) / 2)
        expect.append(target)
        index = [TEACHER_LABELS[i].index(c) for c in labels[pos].tolist()]
        boxes.append(TEACHER_BOXES[i][index])
        rows = [r[i].permute(1, 2, 0).reshape(-1, 4) for r in reg]  # per level, its base edge
        decoded.append(torch.cat([head._bbox_decode(p, r, e, (1e9, 1e9)) for p, r, e in zip(
            points, rows, head.base_edge_list)])[pos])
    (s_cls, t_cls), kw = seen['loss_pc']
    assert torch.allclose(t_cls.sigmoid(), torch.cat(expect), atol=1e-5)
    assert len(boxes[0]) > 0 and len(boxes[1]) > 0  # both images have points in a fovea
    assert kw['avg_factor'].item() == len(boxes[0]) + len(boxes[1])
    (s_box, t_box), kw = seen['loss_pb']
    assert torch.equal(t_box, torch.cat(boxes))
    assert torch.allclose(s_box.detach(), torch.cat(decoded), atol=1e-4)


def test_a_dense_student_without_an_assignment_to_follow_gets_neck_kd_with_the_reason(
        tmp_path):
    t_path, t_ckpt, _ = save_teacher(gfl_model(width=8), tmp_path)
    pred = dict(loss_pc=dict(type='BinaryKDLoss', inputs='pred_cls'))
    with pytest.raises(ValueError, match=r"teacher GFLHead / student FSAFHead: neck-feature KD "
                                         r"\(by stride\) allowed \(no prediction KD: its loss "
                                         r"keeps each box at the level of least loss \(online "
                                         r"feature selection\), after its assigner\), inputs "
                                         r"\['neck'\]"):
        _distiller(hetero_student('fsaf'), t_path, t_ckpt, teacher_temperature=1.0,
                   distill_losses=pred)
    families = ('autoassign', 'centernet', 'centernet_update', 'fovea', 'free_anchor', 'nas_fcos',
                'paa', 'reppoints', 'vfnet', 'yolof')
    heads = {f: MODELS.build(ConfigDict(tiny_model(f))).bbox_head for f in families}
    assert pred_kd_problem(heads['autoassign'], 3) == (
        'its loss weighs every point inside a box softly, with no assignment')
    assert pred_kd_problem(heads['centernet_update'], 3) == (
        'its class targets are heat maps, with no assignment')
    assert pred_kd_problem(heads['reppoints'], 3) == (
        'its training outputs are point sets, not boxes, assigned twice (points, then refined '
        'boxes)')
    assert pred_kd_problem(heads['centernet'], 3) == 'CenterNetHead has no prior generator'
    assert pred_kd_problem(heads['paa'], 4) == 'the teacher predicts 4 classes, the student 3'
    # prior assigners, the FCOS and FoveaBox rules, the assign calls of YOLOF's and VFNet's losses
    for family in ('fovea', 'free_anchor', 'nas_fcos', 'paa', 'vfnet', 'yolof'):
        assert pred_kd_problem(heads[family], 3) is None
    heads['vfnet'].train_cfg = None  # VFNet with ATSS, but no assigner to call
    del heads['vfnet'].assigner
    assert pred_kd_problem(heads['vfnet'], 3) == (
        "VFNetHead has no train_cfg.assigner and no point target rule (supported: ['FCOSHead', "
        "'NASFCOSHead', 'VFNetHead', 'FoveaHead'])")


# ---------------------------------------------------------------------------------- cascades
def test_a_chosen_cascade_teacher_stage_classifies_the_students_rois(tmp_path):
    c_path, c_ckpt, _ = save_teacher(tiny_model('cascade_rcnn'), tmp_path, 'cascade', seed=3)
    model = _distiller(tiny_model('faster_rcnn'), c_path, c_ckpt, teacher_temperature=2.0,
                       teacher_roi_stage=2,
                       distill_losses=dict(loss_kd=dict(type='KDLoss', inputs='roi_cls')))
    kd, student_rois, teacher_calls = [], [], []
    model.distill_losses['loss_kd'].register_forward_hook(lambda m, args, out: kd.append(args[1]))
    model.roi_head.bbox_roi_extractor.register_forward_hook(  # the RoIs the student classifies
        lambda m, args, out: student_rois.append(args[1]))
    t_roi = model.teacher.roi_head
    t_forward = t_roi._bbox_forward

    def teacher_spy(stage, x, rois):
        out = t_forward(stage, x, rois)
        teacher_calls.append((stage, rois, out['cls_score'], x))
        return out

    t_roi._bbox_forward = teacher_spy
    model.train()
    data = _batch(model, n=2, size=64)
    model.loss(data['inputs'], data['data_samples'])
    assert len(teacher_calls) == 1 and len(kd) == 1
    stage, rois, logits, feats = teacher_calls[0]
    assert stage == 2 and torch.equal(rois, student_rois[0])
    assert torch.allclose(kd[0], logits / 2.0)
    with torch.no_grad():  # the stage matters: stage 0 classifies the same RoIs otherwise
        stage0 = t_forward(0, feats, rois)['cls_score']
    assert not torch.allclose(stage0, logits, atol=1e-3)


# ---------------------------------------------------------------------------------- trainings
@pytest.mark.parametrize('student, teacher, losses', [
    (retinanet_model(), gfl_model(), dict(loss_pkd=dict(type='PKDLoss', inputs='neck'))),
    (retinanet_model(), gfl_model(), PRED),
    (gfl_model(), faster_rcnn_model(), dict(loss_cwd=dict(type='CWDLoss', inputs='neck'))),
    (gfl_model(), faster_rcnn_model(), PRED),
    (faster_rcnn_model(), gfl_model(), dict(loss_pkd=dict(type='PKDLoss', inputs='neck'))),
    (tiny_model('faster_rcnn'), tiny_model('cascade_rcnn'),
     dict(loss_kd=dict(type='KDLoss', inputs='roi_cls'),
          loss_pkd=dict(type='PKDLoss', inputs='neck'))),
    (retinanet_model(), deformable_detr_model(),  # strides 16, 32 of 8, 16, 32; 32 wide
     dict(PRED, loss_pkd=dict(type='PKDLoss', inputs='neck', student_channels=16,
                              teacher_channels=32))),
], ids=['retina<-gfl-neck', 'retina<-gfl-pred', 'gfl<-frcnn-neck', 'gfl<-frcnn-pred',
        'frcnn<-gfl-neck', 'frcnn<-cascade-stage2', 'retina<-deformable-detr'])
def test_two_iteration_training_saves_a_stock_student(tmp_path, student, teacher, losses):
    data = write_coco(str(tmp_path / 'data'), n_images=4)
    t_path, t_ckpt, _ = save_teacher(teacher, tmp_path)
    model = copy.deepcopy(student)
    model.update(type=f"Distill{student['type']}", teacher_config=t_path, teacher_ckpt=t_ckpt,
                 teacher_temperature=1.5, distill_losses=losses)
    if 'roi_head' in teacher and teacher['roi_head']['type'] == 'CascadeRoIHead':
        model['teacher_roi_stage'] = 2
    cfg = Config(train_config(model, data, max_iters=2))
    cfg.work_dir = str(tmp_path / 'work')
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg.train_cfg.val_interval = 100
    runner = Runner.from_cfg(cfg)
    runner.train()
    logged = runner.message_hub.log_scalars
    for name in losses:
        assert math.isfinite(logged[f'train/{name}'].current())
    ckpt = torch.load(last_checkpoint(cfg.work_dir), map_location='cpu', weights_only=False)
    stock = MODELS.build(ConfigDict(copy.deepcopy(student)))
    result = stock.load_state_dict(ckpt['state_dict'], strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    assert osp.basename(last_checkpoint(cfg.work_dir)) == 'iter_2.pth'


@pytest.mark.parametrize('family, teacher, size', [
    ('rtmdet', gfl_model(), 64), ('yolox', retinanet_model(), 64), ('fcos', gfl_model(), 128),
    ('vfnet', gfl_model(), 128)], ids=['rtmdet<-gfl', 'yolox<-retina', 'fcos<-gfl', 'vfnet<-gfl'])
def test_two_iteration_kd_cal_run_of_a_student_that_assigns_by_its_own_rule(
        tmp_path, family, teacher, size):
    data = write_coco(str(tmp_path / 'data'), n_images=4, size=size)
    t_path, t_ckpt, _ = save_teacher(teacher, tmp_path)
    student = hetero_student(family)
    model = dict(copy.deepcopy(student), type=f"Distill{student['type']}", teacher_config=t_path,
                 teacher_ckpt=t_ckpt, distill_losses=PRED)
    cfg = Config(train_config(model, data, max_iters=2, size=size))
    # a random teacher: a loose match (IoU 0.1) gives its detections some true positives
    cfg.custom_hooks = [dict(type='TeacherCalibrationHook', fit_on='detections', score_thr=0.0,
                             iou_thr=0.1, dataloader=cfg.val_dataloader)]
    cfg.work_dir = str(tmp_path / 'work')
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg.train_cfg.val_interval = 100
    runner = Runner.from_cfg(cfg)
    runner.train()
    for name in PRED:
        assert math.isfinite(runner.message_hub.log_scalars[f'train/{name}'].current())
    with open(osp.join(cfg.work_dir, 'teacher_calibration.json')) as f:
        fitted = json.load(f)['temperature']
    ckpt = torch.load(last_checkpoint(cfg.work_dir), map_location='cpu', weights_only=False)
    assert ckpt['meta']['teacher_temperature'] == pytest.approx(fitted) and fitted > 0
    result = MODELS.build(ConfigDict(student)).load_state_dict(ckpt['state_dict'], strict=True)
    assert not result.missing_keys and not result.unexpected_keys


@pytest.mark.parametrize('kind', ['dense', 'two_stage', 'detr'])
def test_neck_and_prediction_kd_run_the_teacher_backbone_once_a_step(tmp_path, kind):
    """The teacher's detections reuse the neck features the step already computed, and they are
    the detections its own ``predict`` gives."""
    t_path, t_ckpt, _ = save_teacher(gfl_model(width=8), tmp_path)  # score_thr 0: detections
    roi_pred = dict(loss_rc=dict(type='KDLoss', tau=1.0, inputs='roi_pred_cls'),
                    loss_rb=dict(type='BoxKDLoss', inputs='roi_pred_box'))
    student, pred, build = dict(dense=(retinanet_model(), PRED, _distiller),
                                two_stage=(faster_rcnn_model(), roi_pred, _distiller),
                                detr=(deformable_detr_model(), PRED, detr_distiller))[kind]
    neck = dict(loss_pkd=dict(type='PKDLoss', inputs='neck', student_channels=32,
                              teacher_channels=16)) if kind == 'detr' else NECK
    model = build(student, t_path, t_ckpt, teacher_temperature=1.0,
                  distill_losses=dict(pred, **neck))
    calls = []
    model.teacher.backbone.register_forward_hook(lambda *args: calls.append(1))
    model.train()
    data = _batch(model, n=2, size=64)
    losses = model.loss(data['inputs'], data['data_samples'])
    assert len(calls) == 1 and all(math.isfinite(losses[k].item()) for k in pred)
    with torch.no_grad():
        feats = model.teacher.extract_feat(data['inputs'])
        reused = teacher_detections(model, data['inputs'], data['data_samples'], feats)
        own = teacher_detections(model, data['inputs'], data['data_samples'])
    assert len(calls) == 3  # the extract_feat above and the stock predict, not the reuse
    assert sum(len(d) for d in own) > 0 and 'extract_feat' not in vars(model.teacher)
    for a, b in zip(reused, own):
        for key in ('bboxes', 'labels', 'scores'):
            assert torch.equal(a.get(key), b.get(key)), key
