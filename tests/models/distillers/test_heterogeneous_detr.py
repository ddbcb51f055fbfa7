"""DETR-family students with a teacher of another family: soft targets of a planted matching,
what the student's assigner receives, refusals, a calibrated toy training."""
import copy
import math

import pytest
import torch
from mmengine.config import Config, ConfigDict
from mmengine.runner import Runner
from mmengine.structures import InstanceData

from mmdet.models.task_modules import AssignResult
from mmdet.registry import MODELS
from mmdet.structures.bbox import bbox_cxcywh_to_xyxy

import mmkdcal  # noqa: F401
from mmkdcal.engine.hooks import TeacherCalibrationHook

from _detr_helpers import (deformable_detr_model, detr_distiller, detr_model, dino_model,
                           distill_type)
from _helpers import batch as _batch
from _helpers import (faster_rcnn_model, gfl_model, last_checkpoint, retinanet_model, save_teacher,
                      train_config, write_coco)

torch.set_num_threads(1)
PRED = dict(loss_pc=dict(type='BinaryKDLoss', beta=2.0, inputs='pred_cls'),
            loss_pb=dict(type='BoxKDLoss', l1_weight=0.0, giou_weight=1.0, inputs='pred_box'))
#: Plain DETR (softmax head): the (K + 1)-way class input takes the softmax KD loss at tau = 1.
SOFTMAX_PRED = dict(PRED, loss_pc=dict(type='KDLoss', tau=1.0, inputs='pred_cls'))
#: Image 0: box A (class 2, score 0.8) and box B (class 0, score 0.2); image 1: nothing.
#: Calibrated by T = 2: sigmoid(logit(0.8) / 2) = 1 / (1 + sqrt(0.2 / 0.8)) = 2 / 3 and
#: sigmoid(logit(0.2) / 2) = 1 / 3.
PLANTED_BOXES = torch.tensor([[8., 8., 40., 40.], [20., 4., 60., 30.]])


def _record_loss_inputs(model, seen):
    for name in model.distill_losses:
        model.distill_losses[name].register_forward_hook(
            lambda m, args, kwargs, out, name=name: seen.update({name: (args, kwargs)}),
            with_kwargs=True)


def _planted_kd_step(model):
    """One ``loss`` step of ``model`` (8 queries) whose teacher detects :data:`PLANTED_BOXES`
    and whose assigner matches query 5 <- A, query 1 <- B in image 0 for the KD. Returns the
    loss inputs recorded by name and the head's outputs."""
    boxes = PLANTED_BOXES
    planted = (InstanceData(bboxes=boxes, scores=torch.tensor([0.8, 0.2]),
                            labels=torch.tensor([2, 0])),
               InstanceData(bboxes=torch.zeros(0, 4), scores=torch.zeros(0),
                            labels=torch.zeros(0, dtype=torch.long)))

    def predict(inputs, samples, rescale):
        for s, p in zip(samples, planted):
            s.pred_instances = p.clone()
        return samples

    object.__setattr__(model.teacher, 'predict', predict)
    # the matching: query 5 <- A, query 1 <- B in image 0 (the last calls: the KD's)
    assigner, kd_calls = model.bbox_head.assigner, []
    stock_assign = assigner.assign

    def assign(pred_instances, gt_instances, img_meta=None, **kwargs):
        result = stock_assign(pred_instances, gt_instances, img_meta=img_meta, **kwargs)
        if len(gt_instances) and torch.equal(gt_instances.bboxes, boxes):
            kd_calls.append(gt_instances)
            gt_inds = torch.zeros(8, dtype=torch.long)
            gt_inds[5], gt_inds[1] = 1, 2
            return AssignResult(2, gt_inds, None, labels=gt_inds.new_full((8, ), -1))
        return result

    assigner.assign = assign
    heads, seen = [], {}
    model.bbox_head.register_forward_hook(lambda m, args, out: heads.append(out))
    _record_loss_inputs(model, seen)
    data = _batch(model, n=2, size=64)
    model.loss(data['inputs'], data['data_samples'])
    assert len(kd_calls) == 1 and torch.equal(kd_calls[0].labels, torch.tensor([2, 0]))
    return seen, heads[0]


def test_soft_targets_and_box_weights_of_a_planted_detection_matching(tmp_path):
    t_path, t_ckpt, _ = save_teacher(gfl_model(width=8), tmp_path)
    model = detr_distiller(deformable_detr_model(), t_path, t_ckpt, teacher_temperature=2.0,
                           distill_losses=PRED)
    seen, head_out = _planted_kd_step(model)
    (s_cls, t_cls), kw = seen['loss_pc']
    # every matching query of the last decoder layer, image by image; targets 0 unless matched
    assert torch.equal(s_cls, head_out[0][-1].flatten(0, 1)) and s_cls.requires_grad
    expected = torch.zeros(16, 3)
    expected[5, 2], expected[1, 0] = 2 / 3, 1 / 3
    assert torch.allclose(t_cls.sigmoid(), expected, atol=1e-5)
    assert kw['avg_factor'].item() == 2
    # boxes: rows in query order (1: B, 5: A), xyxy in input pixels, weighted by the scores
    (s_box, t_box), kw = seen['loss_pb']
    assert torch.equal(t_box, PLANTED_BOXES[[1, 0]])
    assert torch.allclose(kw['weight'], torch.tensor([1 / 3, 2 / 3]))
    assert kw['avg_factor'].item() == 2
    last = head_out[1][-1, 0, [1, 5]]  # normalised (cx, cy, w, h) on the 64 x 64 image
    assert torch.allclose(s_box, bbox_cxcywh_to_xyxy(last) * 64, atol=1e-5)
    assert s_box.requires_grad


def test_plain_detr_takes_k_plus_one_way_targets_weighted_as_its_own_loss_cls(tmp_path):
    t_path, t_ckpt, _ = save_teacher(gfl_model(width=8), tmp_path)
    model = detr_distiller(detr_model(), t_path, t_ckpt, teacher_temperature=2.0,
                           distill_losses=SOFTMAX_PRED)
    seen, head_out = _planted_kd_step(model)
    (s_cls, t_cls), kw = seen['loss_pc']
    assert torch.equal(s_cls, head_out[0][-1].flatten(0, 1)) and s_cls.shape == (16, 4)
    # s at the class, 1 - s on "no object" (column 3); an unmatched query: all on "no object"
    expected = torch.zeros(16, 4)
    expected[:, 3] = 1.0
    expected[5, 2], expected[5, 3] = 2 / 3, 1 / 3
    expected[1, 0], expected[1, 3] = 1 / 3, 2 / 3
    assert torch.allclose(t_cls.exp(), expected, atol=1e-6)
    assert (t_cls[expected == 0] == -1e4).all()  # log 0, finite
    # DETR's loss_cls weights: class_weight 1.0 at a class, bg_cls_weight 0.1 on "no object";
    # avg_factor 2 matched + 14 unmatched * 0.1 = 3.4, as its cls_avg_factor
    weight = torch.full((16, ), 0.1)
    weight[[1, 5]] = 1.0
    assert torch.allclose(kw['weight'], weight) and kw['avg_factor'].item() == pytest.approx(3.4)
    # KDLoss(tau=1) = KL(q || p), by hand: s log(s / p_c) + (1 - s) log((1 - s) / p_noobj)
    log_p = s_cls.detach().log_softmax(1)
    kl = -log_p[:, 3]
    kl[5] = 2 / 3 * (math.log(2 / 3) - log_p[5, 2]) + 1 / 3 * (math.log(1 / 3) - log_p[5, 3])
    kl[1] = 1 / 3 * (math.log(1 / 3) - log_p[1, 0]) + 2 / 3 * (math.log(2 / 3) - log_p[1, 3])
    loss = model.distill_losses['loss_pc'](s_cls, t_cls, **kw)
    assert loss.item() == pytest.approx(((weight * kl).sum() / 3.4).item(), rel=1e-5)
    # boxes as the sigmoid path: query order, weighted by the calibrated scores
    (s_box, t_box), kw = seen['loss_pb']
    assert torch.equal(t_box, PLANTED_BOXES[[1, 0]])
    assert torch.allclose(kw['weight'], torch.tensor([1 / 3, 2 / 3]))
    assert torch.allclose(s_box, bbox_cxcywh_to_xyxy(head_out[1][-1, 0, [1, 5]]) * 64, atol=1e-5)


@pytest.mark.parametrize('student', [deformable_detr_model(), dino_model()],
                         ids=['deformable-detr', 'dino'])
def test_the_assigner_gets_the_detached_predictions_its_own_loss_gives_it(tmp_path, student):
    t_path, t_ckpt, _ = save_teacher(gfl_model(width=8), tmp_path)
    model = detr_distiller(student, t_path, t_ckpt, teacher_temperature=1.0,
                           distill_losses=PRED)
    calls = []
    stock_assign = model.bbox_head.assigner.assign

    def spy(**kwargs):
        calls.append(kwargs)
        return stock_assign(**kwargs)

    model.bbox_head.assigner.assign = spy
    model.train()
    data = _batch(model, n=2, size=64)
    model.loss(data['inputs'], data['data_samples'])
    # the stock loss: each decoder layer's matching queries (2 layers x 2 images), then DINO's
    # encoder proposals (2 images); then the KD: the last layer again (2 images)
    assert len(calls) == 2 * 2 + (2 if student['type'] == 'DINO' else 0) + 2
    for stock, kd, sample in zip(calls[2:4], calls[-2:], data['data_samples']):
        for key in ('scores', 'bboxes'):  # same values, DINO's denoising queries left out
            assert kd['pred_instances'].get(key).shape[0] == 8
            assert torch.equal(kd['pred_instances'].get(key), stock['pred_instances'].get(key))
            assert stock['pred_instances'].get(key).requires_grad
            assert not kd['pred_instances'].get(key).requires_grad
        assert kd['img_meta'] == stock['img_meta'] == sample.metainfo
        assert torch.equal(stock['gt_instances'].bboxes, sample.gt_instances.bboxes)
        assert len(kd['gt_instances']) > 0  # the teacher's detections


def test_a_two_stage_teacher_teaches_by_its_detections_and_neck(tmp_path):
    t_path, t_ckpt, _ = save_teacher(faster_rcnn_model(), tmp_path)
    losses = dict(PRED, loss_pkd=dict(type='PKDLoss', inputs='neck', student_channels=32,
                                      teacher_channels=16))
    model = detr_distiller(deformable_detr_model(), t_path, t_ckpt, teacher_temperature=1.0,
                           distill_losses=losses)
    assert model.hetero.teacher_head == 'StandardRoIHead'
    assert model.hetero.level_pairs == ((0, 1), (1, 2))  # strides 16, 32 of 8, 16, 32
    seen, levels = {}, []
    _record_loss_inputs(model, seen)
    model.distill_losses['loss_pkd'].register_forward_hook(  # called level by level
        lambda m, args, out: levels.append((args[0].shape, args[1].shape)))
    data = _batch(model, n=2, size=64)
    model.loss(data['inputs'], data['data_samples'])
    assert levels == [((2, 32, 4, 4), (2, 16, 4, 4)), ((2, 32, 2, 2), (2, 16, 2, 2))]
    model.teacher.eval()
    with torch.no_grad():  # the teacher's own detections (its test_cfg: 50 per image)
        dets = model.teacher.predict(data['inputs'], copy.deepcopy(data['data_samples']),
                                     rescale=False)
    (_, t_box), kw = seen['loss_pb']
    assert len(t_box) == 2 * 8  # every one of the 8 queries of each image is matched
    for img in range(2):
        pred = dets[img].pred_instances
        for box, w in zip(t_box[8 * img:8 * img + 8], kw['weight'][8 * img:8 * img + 8]):
            # T = 1: the calibrated score is the detection's own score
            j = (pred.bboxes == box).all(dim=1).nonzero()[0, 0]
            assert w.item() == pytest.approx(pred.scores[j].item(), abs=1e-5)


def test_refusals_name_the_reason(tmp_path):
    o_path, o_ckpt, _ = save_teacher(gfl_model(width=8, num_classes=4), tmp_path, 'gfl4')
    with pytest.raises(ValueError, match=r"teacher GFLHead / student DeformableDETRHead: "
                                         r"neck-feature KD \(by stride\) allowed \(no prediction "
                                         r"KD: the teacher predicts 4 classes, the student 3\), "
                                         r"inputs \['neck'\]; inputs='pred_cls'"):
        detr_distiller(deformable_detr_model(), o_path, o_ckpt, teacher_temperature=1.0,
                       distill_losses=PRED)
    g_path, g_ckpt, _ = save_teacher(gfl_model(width=8), tmp_path, 'gfl')
    # DETR's softmax head: its (K + 1)-way 'pred_cls' refuses a sigmoid-only loss
    with pytest.raises(ValueError, match=r"BinaryKDLoss treats logits as sigmoid scores, but "
                                         r"inputs='pred_cls' gives softmax class logits \(M, "
                                         r"K \+ 1, the last one \"no object\"\).*DistillDETR has "
                                         r"no input that BinaryKDLoss can use"):
        detr_distiller(detr_model(), g_path, g_ckpt, teacher_temperature=1.0,
                       distill_losses=PRED)
    # query logits need a DETR-family teacher
    with pytest.raises(ValueError, match=r"inputs \['neck', 'pred_cls', 'pred_box'\]; "
                                         r"inputs='logits' needs the same head layout"):
        detr_distiller(deformable_detr_model(), g_path, g_ckpt, teacher_temperature=1.0,
                       distill_losses=dict(loss_kd=dict(type='BinaryKDLoss', inputs='logits')))
    # Deformable DETR levels at strides 16, 32 (backbone stages 2, 3); anchors declared at 64+
    r_path, r_ckpt, _ = save_teacher(retinanet_model(strides=(64, 128, 256)), tmp_path, 'far')
    with pytest.raises(ValueError, match=r'(?s)no neck level of the student has the stride.*'
                                         r'student \(DistillDeformableDETR\) level: stride = '
                                         r'\{0: 16, 1: 32\}.*teacher \(RetinaNet\) level: '
                                         r'stride = \{0: 64, 1: 128, 2: 256\}'):
        detr_distiller(deformable_detr_model(), r_path, r_ckpt, teacher_temperature=1.0,
                       distill_losses=dict(loss_n=dict(type='FeatureMSELoss', inputs='neck')))


@pytest.mark.parametrize('student, pred, pairs', [
    (deformable_detr_model(), PRED, ((0, 1), (1, 2))),  # strides 16, 32 of GFL's 8, 16, 32
    (detr_model(), SOFTMAX_PRED, ((0, 2), ))], ids=['deformable-detr', 'detr'])  # stride 32
def test_kd_cal_training_from_a_gfl_teacher_saves_a_stock_student(tmp_path, student, pred, pairs):
    data = write_coco(str(tmp_path / 'data'), n_images=4)
    t_path, t_ckpt, _ = save_teacher(gfl_model(), tmp_path)
    model = copy.deepcopy(student)
    losses = dict(pred, loss_pkd=dict(type='PKDLoss', inputs='neck', student_channels=32,
                                      teacher_channels=16))
    model.update(type=distill_type(student), teacher_config=t_path, teacher_ckpt=t_ckpt,
                 distill_losses=losses)
    # fit on the detections (the default for such a pair); a random teacher's boxes seldom
    # reach IoU 0.5 with the ground truth, so a true detection here is one at IoU >= 0.1
    cfg = Config(train_config(model, data, max_iters=2, custom_hooks=[
        dict(type='TeacherCalibrationHook', score_thr=0.0, iou_thr=0.1)]))
    cfg.work_dir = str(tmp_path / 'work')
    cfg.train_cfg.val_interval = 100
    runner = Runner.from_cfg(cfg)
    assert runner.model.hetero.level_pairs == pairs
    runner.train()
    hook = next(h for h in runner.hooks if isinstance(h, TeacherCalibrationHook))
    assert hook.report['fit_on'] == 'detections'
    assert runner.model.temperature_source == 'fitted'
    logged = runner.message_hub.log_scalars
    for name in losses:
        assert math.isfinite(logged[f'train/{name}'].current())
    ckpt = torch.load(last_checkpoint(cfg.work_dir), map_location='cpu', weights_only=False)
    stock = MODELS.build(ConfigDict(copy.deepcopy(student)))
    result = stock.load_state_dict(ckpt['state_dict'], strict=True)
    assert not result.missing_keys and not result.unexpected_keys
