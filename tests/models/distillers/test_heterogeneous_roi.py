"""RoI students taught by the detections of a teacher of another family: soft targets at the
sampled RoIs, the no-positive step, cascades, refusals, a KD + calibration run."""
import copy
import json
import math
import os.path as osp
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config, ConfigDict
from mmengine.runner import Runner
from mmengine.structures import InstanceData

from mmdet.registry import MODELS
from mmdet.structures.bbox import bbox2roi, bbox_overlaps

import mmkdcal  # noqa: F401
from mmkdcal.models.distillers.heterogeneous import roi_soft_targets
from mmkdcal.models.losses import KDLoss
from mmkdcal.utils.checkpoint import load_checkpoint_file

from _families import tiny_model
from _helpers import batch as _batch
from _helpers import distiller as _distiller
from _helpers import (faster_rcnn_model, gfl_model, last_checkpoint, save_teacher, train_config,
                      write_coco)

torch.set_num_threads(1)
PRED = dict(loss_rpc=dict(type='KDLoss', tau=1.0, inputs='roi_pred_cls'),
            loss_rpb=dict(type='BoxKDLoss', giou_weight=1.0, inputs='roi_pred_box'))


@pytest.fixture(scope='module')
def gfl_teacher(tmp_path_factory):
    return save_teacher(gfl_model(width=8), tmp_path_factory.mktemp('gfl'))[:2]


def plant_detections(model, per_image):
    """Make the teacher predict the given (boxes, scores, labels) per image."""
    def predict(inputs, samples, rescale):
        for s, (boxes, scores, labels) in zip(samples, per_image):
            s.pred_instances = InstanceData(bboxes=boxes.clone(), scores=scores.clone(),
                                            labels=labels.clone())
        return samples

    object.__setattr__(model.teacher, 'predict', predict)


def record_losses(model, names):
    seen = {}
    for name in names:
        model.distill_losses[name].register_forward_hook(
            lambda m, args, kwargs, out, name=name: seen.setdefault(name, []).append(
                (args, kwargs, out)), with_kwargs=True)
    return seen


# ---------------------------------------------------------------------------------- targets
def test_soft_targets_and_boxes_of_planted_rois(gfl_teacher):
    model = _distiller(faster_rcnn_model(), *gfl_teacher, teacher_temperature=1.0,
                       distill_losses=PRED)
    # image 0: detection A (class 2, calibrated score 2/3); image 1: C (class 1, 0.5), then B
    # (class 0, 1/3): B is the third detection of the batch
    a, b, c = [0., 0., 32., 32.], [10., 10., 42., 42.], [0., 40., 20., 60.]
    dets = [InstanceData(bboxes=torch.tensor([a]), labels=torch.tensor([2]),
                         scores=torch.tensor([2 / 3])),
            InstanceData(bboxes=torch.tensor([c, b]), labels=torch.tensor([1, 0]),
                         scores=torch.tensor([0.5, 1 / 3]))]
    # RoIs 0-2 (image 0) against A: IoU 1; 24 * 32 / (2 * 1024 - 768) = 0.6 (positive at the
    # rcnn assigner's 0.5); 16 * 32 / (2048 - 512) = 1/3 (background). RoIs 3-4 (image 1): IoU
    # 1 with B; [40, 40, 60, 60] meets neither C nor B (background)
    priors = [torch.tensor([a, [8., 0., 40., 32.], [16., 0., 48., 32.]]),
              torch.tensor([b, [40., 40., 60., 60.]])]
    cls_score = torch.randn(5, 4, requires_grad=True)
    deltas = torch.zeros(5, 3, 4)
    deltas[1, 2, 0] = 1.0  # RoI 1 (8 to 40), class 2: dx = 1 * std 0.1 * width 32 = +3.2 px
    deltas[1, 0] = torch.tensor([0., 1., 0., 0.])  # another class's box: not taken
    bbox_pred = deltas.view(5, 12).requires_grad_()
    record = dict(rois=bbox2roi(priors), cls_score=cls_score, bbox_pred=bbox_pred,
                  sampling_results=[SimpleNamespace(priors=p) for p in priors])
    s_cls, t_cls, s_box, t_box, w = roi_soft_targets(
        model.roi_head.bbox_assigner, model.roi_head.bbox_head, record, dets)
    want = torch.tensor([[0, 0, 2 / 3, 1 / 3], [0, 0, 2 / 3, 1 / 3], [0, 0, 0, 1],
                         [1 / 3, 0, 0, 2 / 3], [0, 0, 0, 1]])
    assert torch.equal(s_cls, cls_score)
    assert torch.allclose(t_cls.softmax(dim=1), want, atol=1e-6)
    # KDLoss(tau=1) on them: KL(want || softmax(s)) per RoI (0 log 0 = 0), averaged
    log_p = F.log_softmax(cls_score, dim=1)
    kl = sum(q * (math.log(q) - log_p[i, j]) for i, row in enumerate(want.tolist())
             for j, q in enumerate(row) if q > 0) / 5
    assert torch.allclose(KDLoss(tau=1.0)(s_cls, t_cls), kl, atol=1e-5)
    assert torch.allclose(s_box, torch.tensor([a, [11.2, 0., 43.2, 32.], b]), atol=1e-4)
    assert torch.equal(t_box, torch.tensor([a, a, b]))
    assert torch.allclose(w, torch.tensor([2 / 3, 2 / 3, 1 / 3]))
    (s_box * torch.tensor([1., 2., 3., 5.])).sum().backward()
    assert bbox_pred.grad[1].nonzero().squeeze(1).tolist() == [8, 9, 10, 11]  # class 2 only


def test_the_student_step_assigns_calibrated_detections_to_its_sampled_rois(gfl_teacher):
    model = _distiller(faster_rcnn_model(), *gfl_teacher, teacher_temperature=2.0,
                       distill_losses=PRED)
    data = _batch(model, n=2, size=64)
    # the teacher detects each image's ground truth at score 0.8: sigmoid(logit(0.8) / 2) = 2/3
    gts = [s.gt_instances for s in data['data_samples']]
    plant_detections(model, [(g.bboxes, torch.full((2, ), 0.8), g.labels) for g in gts])
    rois, scores = [], []
    model.roi_head.bbox_roi_extractor.register_forward_hook(
        lambda m, args, out: rois.append(args[1]))
    model.roi_head.bbox_head.register_forward_hook(lambda m, args, out: scores.append(out[0]))
    seen = record_losses(model, PRED)
    model.train()
    model.loss(data['inputs'], data['data_samples'])
    ((s_cls, t_cls), _, _), = seen['loss_rpc']
    ((s_box, t_box), kw, _), = seen['loss_rpb']
    assert torch.equal(s_cls, scores[0])
    want = torch.zeros(len(rois[0]), 4)
    want[:, 3] = 1.0
    matched = []
    for i, g in enumerate(gts):  # mmdet's IoU; the rcnn assigner's positive threshold 0.5
        rows = (rois[0][:, 0] == i).nonzero().squeeze(1)
        iou, j = bbox_overlaps(rois[0][rows, 1:], g.bboxes).max(dim=1)
        pos = rows[iou >= 0.5]
        want[pos, g.labels[j[iou >= 0.5]]] = 2 / 3
        want[pos, 3] = 1 / 3
        matched.append(g.bboxes[j[iou >= 0.5]])
    assert torch.allclose(t_cls.softmax(dim=1), want, atol=1e-6)
    assert (want[:, 3] < 1).sum() >= 4  # the sampler's positives (>= the 4 ground truths)
    assert torch.equal(t_box, torch.cat(matched))
    assert torch.allclose(kw['weight'], torch.full((len(t_box), ), 2 / 3))


def test_a_step_with_no_positive_roi_gives_zero_box_loss_in_the_graph(gfl_teacher):
    model = _distiller(faster_rcnn_model(), *gfl_teacher, teacher_temperature=1.0,
                       distill_losses=PRED)
    empty = (torch.zeros(0, 4), torch.zeros(0), torch.zeros(0, dtype=torch.long))
    plant_detections(model, [empty, empty])
    seen = record_losses(model, PRED)
    data = _batch(model, n=2, size=64)
    model.train()
    losses = model.loss(data['inputs'], data['data_samples'])
    ((_, t_cls), _, _), = seen['loss_rpc']
    assert torch.allclose(t_cls.softmax(dim=1)[:, 3], torch.ones(len(t_cls)))
    assert losses['loss_rpb'].item() == 0 and losses['loss_rpb'].requires_grad
    assert seen['loss_rpb'][0][0][0].shape == (0, 4)
    (losses['loss_rpc'] + losses['loss_rpb']).backward()


def test_a_cascade_student_is_taught_at_each_of_its_roi_stages(tmp_path):
    t_path, t_ckpt, _ = save_teacher(tiny_model('gfl'), tmp_path)
    model = _distiller(tiny_model('cascade_rcnn'), t_path, t_ckpt, teacher_temperature=1.0,
                       roi_stages=[0, 2], distill_losses=PRED)
    seen = record_losses(model, PRED)
    stage_scores, stage_rois = {s: [] for s in range(3)}, {s: [] for s in range(3)}
    for s in range(3):
        model.roi_head.bbox_head[s].register_forward_hook(
            lambda m, args, out, s=s: stage_scores[s].append(out[0]))
        model.roi_head.bbox_roi_extractor[s].register_forward_hook(
            lambda m, args, out, s=s: stage_rois[s].append(args[1]))
    data = _batch(model, n=2, size=64)
    gts = [s.gt_instances for s in data['data_samples']]  # detected at 0.8 (T = 1)
    plant_detections(model, [(g.bboxes, torch.full((2, ), 0.8), g.labels) for g in gts])
    model.train()
    losses = model.loss(data['inputs'], data['data_samples'])
    calls = seen['loss_rpc']
    assert len(calls) == 2  # stages 0 and 2, each on its own logits
    for (args, _, _), stage, iou_thr in zip(calls, (0, 2), (0.5, 0.7)):
        assert model.roi_head.bbox_assigner[stage].pos_iou_thr == iou_thr
        assert torch.equal(args[0], stage_scores[stage][0])
        rois = stage_rois[stage][0]  # positive: IoU >= the stage's own threshold (mmdet's IoU)
        best = torch.stack([bbox_overlaps(r[None, 1:], gts[int(r[0])].bboxes).max() for r in rois])
        assert torch.equal(args[1].softmax(dim=1)[:, -1] < 0.5, best >= iou_thr)
        assert (best >= iou_thr).sum() >= 4  # the sampler's positives (>= the 4 ground truths)
    weights = model.roi_head.stage_loss_weights  # 1, 0.5, 0.25
    for name in PRED:
        per_stage = [out for _, _, out in seen[name]]
        assert len(per_stage) == 2
        assert torch.allclose(losses[name], weights[0] * per_stage[0] + weights[2] * per_stage[1])


# ---------------------------------------------------------------------------------- refusals
def test_refusals_name_why_a_roi_student_takes_no_detections(tmp_path, gfl_teacher):
    o_path, o_ckpt, _ = save_teacher(gfl_model(width=8, num_classes=4), tmp_path, 'gfl4')
    with pytest.raises(ValueError, match=r"allowed \(no prediction KD: the teacher predicts 4 "
                                         r"classes, the student 3\), inputs \['neck'\]; "
                                         r"inputs='roi_pred_cls'"):
        _distiller(faster_rcnn_model(), o_path, o_ckpt, teacher_temperature=1.0,
                   distill_losses=PRED)
    sigmoid = faster_rcnn_model()
    sigmoid['roi_head']['bbox_head']['loss_cls']['use_sigmoid'] = True
    with pytest.raises(ValueError, match=r"no prediction KD: its RoI class scores are not a "
                                         r"softmax over K \+ 1\), inputs \['neck'\]"):
        _distiller(sigmoid, *gfl_teacher, teacher_temperature=1.0, distill_losses=PRED)
    sabl = faster_rcnn_model()  # side buckets and offsets, no deltas to decode
    sabl['roi_head']['bbox_head'] = dict(
        type='SABLHead', num_classes=3, cls_in_channels=16, reg_in_channels=16, roi_feat_size=7,
        cls_out_channels=32, reg_offset_out_channels=32, reg_cls_out_channels=32,
        bbox_coder=dict(type='BucketingBBoxCoder', num_buckets=14, scale_factor=1.7),
        loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0))
    with pytest.raises(ValueError, match=r"no prediction KD: its RoI box outputs are not deltas "
                                         r"\(DeltaXYWHBBoxCoder\) of the RoIs\), inputs "
                                         r"\['neck'\]"):
        _distiller(sabl, *gfl_teacher, teacher_temperature=1.0, distill_losses=PRED)
    with pytest.raises(ValueError, match=r"BinaryKDLoss treats logits as sigmoid scores, but "
                                         r"inputs='roi_pred_cls' gives softmax logits"):
        _distiller(faster_rcnn_model(), *gfl_teacher, teacher_temperature=1.0,
                   distill_losses=dict(loss_b=dict(type='BinaryKDLoss', inputs='roi_pred_cls')))
    # a teacher without an RPN has no detections of its own: neck KD, as before
    fast = faster_rcnn_model()
    fast['type'] = 'FastRCNN'
    del fast['rpn_head']
    f_path, f_ckpt, _ = save_teacher(fast, tmp_path, 'fast')
    with pytest.raises(ValueError, match=r"teacher FastRCNN / student StandardRoIHead: "
                                         r"neck-feature KD \(by stride\) allowed, inputs "
                                         r"\['neck'\]; inputs='roi_pred_cls'"):
        _distiller(faster_rcnn_model(), f_path, f_ckpt, teacher_temperature=1.0,
                   distill_losses=PRED)


# ---------------------------------------------------------------------------------- training
def test_kd_and_calibration_run_saves_a_stock_faster_rcnn(tmp_path, gfl_teacher):
    data = write_coco(str(tmp_path / 'data'), n_images=4)
    student = faster_rcnn_model()
    model = dict(copy.deepcopy(student), type='DistillFasterRCNN', teacher_config=gfl_teacher[0],
                 teacher_ckpt=gfl_teacher[1],
                 distill_losses=dict(PRED, loss_pkd=dict(type='PKDLoss', inputs='neck')))
    # an untrained GFL's boxes reach 4 strides from each prior's centre (a uniform side
    # distribution over 0..8): its stride-16 and -32 boxes are clipped to the whole image. The
    # calibration split's ground truth is that whole-image box (class 0), so some detections
    # match and others do not
    calib = write_coco(str(tmp_path / 'calib'), n_images=2)
    with open(osp.join(calib['root'], calib['ann'])) as f:
        ann = json.load(f)
    ann['annotations'] = [dict(id=i + 1, image_id=i + 1, category_id=1, bbox=[0, 0, 64, 64],
                               area=64 * 64, iscrowd=0) for i in range(2)]
    with open(osp.join(calib['root'], calib['ann']), 'w') as f:
        json.dump(ann, f)
    cfg = Config(train_config(model, data, max_iters=2, custom_hooks=[
        dict(type='TeacherCalibrationHook', score_thr=0.0,
             dataloader=train_config(student, calib)['val_dataloader'])]))
    cfg.work_dir = str(tmp_path / 'work')
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg.train_cfg.val_interval = 100
    runner = Runner.from_cfg(cfg)
    runner.train()
    hook, = [h for h in runner.hooks if type(h).__name__ == 'TeacherCalibrationHook']
    assert hook.report['fit_on'] == 'detections' and hook.report['num_samples'] > 0
    assert runner.model.temperature_source == 'fitted'
    for name in ('loss_rpc', 'loss_rpb', 'loss_pkd'):
        assert math.isfinite(runner.message_hub.log_scalars[f'train/{name}'].current())
    ckpt = load_checkpoint_file(last_checkpoint(cfg.work_dir))
    assert ckpt['meta']['iter'] == 2
    stock = MODELS.build(ConfigDict(copy.deepcopy(student)))
    result = stock.load_state_dict(ckpt['state_dict'], strict=True)
    assert not result.missing_keys and not result.unexpected_keys
