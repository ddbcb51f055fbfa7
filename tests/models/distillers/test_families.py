"""Every supported CNN detector family, distilled through its own MMDetection code.

For each family (its stock mmdet config at test size, see tests/_families.py): the distiller's task
losses equal the stock detector's on a fixed batch; a teacher that is a copy of the student gives
zero KD wherever the loss's floor is zero (so student and teacher rows line up); a 2-iteration
KD+cal run trains and its checkpoint loads strictly into the stock student. Plus the meaning of
the outputs of heads that are not plain logits, against hand-computed values.
"""
import copy
import math

import pytest
import torch
from mmengine.config import Config, ConfigDict
from mmengine.logging import MessageHub
from mmengine.runner import Runner

from mmdet.registry import MODELS

import mmkdcal  # noqa: F401
from mmkdcal.models.distillers import DenseHeadSemantics, distiller_type, score_logits
from mmkdcal.models.distillers.head_semantics import DENSE_HEADS
from mmkdcal.models.distillers.taps import OutputTaps
from mmkdcal.models.losses import DistillLoss
from mmkdcal.utils.checkpoint import load_checkpoint_file

from _families import FAMILIES, TWO_STAGE, WITH_MASK, family_test_pipeline, input_size, tiny_model
from _helpers import batch, last_checkpoint, save_teacher, train_config, write_coco

torch.set_num_threads(1)
CROSSKD = ('gfl', 'retinanet', 'atss')
#: families whose heads declare per-prior targets: calibrated on priors (fit_on='anchors')
PRIOR_TARGETS = ('fcos', 'rtmdet', 'retina_sepbn', 'fsaf', 'fovea', 'nas_fcos', 'yolof',
                 'rtmdet_ins', 'condinst', 'yolact')


@pytest.fixture(autouse=True)
def _epoch():  # TOOD reads the epoch, BoxInst the iteration from the message hub (as a Runner)
    MessageHub.get_current_instance().update_info('epoch', 0)
    MessageHub.get_current_instance().update_info('iter', 0)


def _zero_floor_losses(family: str, model_cfg: dict) -> dict:
    """Losses whose minimum, 0, is reached exactly when student and teacher agree."""
    if family in TWO_STAGE:
        losses = dict(loss_kd_roi=dict(type='KDLoss', inputs='roi_cls', tau=2.0),
                      loss_kd_rpn=dict(type='BinaryKDLoss', inputs='rpn_cls', beta=1.0),
                      loss_kd_neck=dict(type='PKDLoss', inputs='neck'))
        if family in WITH_MASK:
            losses['loss_kd_mask'] = dict(type='BinaryKDLoss', inputs='roi_mask', beta=1.0)
        return losses
    losses = dict(loss_kd_cls=dict(type='BinaryKDLoss', inputs='cls', beta=1.0),
                  loss_kd_neck=dict(type='PKDLoss', inputs='neck'))
    if family == 'gfl':
        losses['loss_kd_reg'] = dict(type='LDLoss', inputs='reg')
    elif family not in ('centernet', 'reppoints'):  # these declare no box output
        losses['loss_kd_reg'] = dict(type='BoxKDLoss', inputs='reg')
    if family in ('rtmdet_ins', 'condinst', 'boxinst'):
        losses['loss_kd_mask'] = dict(type='BinaryKDLoss', inputs='mask', beta=1.0)
    if family in CROSSKD:
        losses['loss_kd_xcls'] = dict(type='BinaryKDLoss', inputs='crosskd_cls', beta=1.0)
        losses['loss_kd_xreg'] = dict(type='LDLoss' if family == 'gfl' else 'BoxKDLoss',
                                      inputs='crosskd_reg')
    return losses


def _distiller_cfg(family, teacher_cfg_path, ckpt, **kw):
    cfg = tiny_model(family)
    cfg.update(dict(dict(type=distiller_type(cfg), teacher_config=teacher_cfg_path,
                         teacher_ckpt=ckpt), **kw))
    if family in CROSSKD:
        cfg['crosskd'] = dict(layer=0)
    return cfg


@pytest.mark.parametrize('family', sorted(FAMILIES))
def test_stock_losses_and_zero_kd_from_a_copy(family, tmp_path):
    cfg = tiny_model(family)
    t_path, t_ckpt, teacher = save_teacher(cfg, tmp_path, seed=1)
    model = MODELS.build(ConfigDict(_distiller_cfg(
        family, t_path, t_ckpt, teacher_temperature=1.0,
        distill_losses=_zero_floor_losses(family, cfg),
        teacher_inference=dict(fuse_conv_bn=False))))  # BN kept: batch statistics below
    assert type(model) is MODELS.get(distiller_type(cfg))
    if distiller_type(cfg) == f"Distill{cfg['type']}":  # else a plain SingleStageDetector's
        assert isinstance(model, MODELS.get(cfg['type']))  # the student keeps its own class
    model.load_state_dict(teacher.state_dict(), strict=True)  # the student is the teacher now
    stock = MODELS.build(ConfigDict(copy.deepcopy(cfg)))
    stock.load_state_dict(teacher.state_dict(), strict=True)
    model.train()
    stock.train()
    model.teacher.train()  # batch statistics on both sides, so the copy is an exact copy
    data = batch(model, size=input_size(family), masks=family in WITH_MASK)
    samples = copy.deepcopy(data['data_samples'])  # RTMDet-Ins turns the gt masks into tensors
    torch.manual_seed(0)
    losses = model.loss(data['inputs'], data['data_samples'])
    torch.manual_seed(0)
    ref = stock.loss(data['inputs'], samples)
    for key, want in ref.items():
        got = losses[key]
        for g, w in zip(got if isinstance(got, (list, tuple)) else [got],
                        want if isinstance(want, (list, tuple)) else [want]):
            assert torch.allclose(g, w, rtol=1e-5, atol=1e-6), (family, key, g, w)
    kd = {k: v for k, v in losses.items() if k not in ref}
    assert set(kd) == set(_zero_floor_losses(family, cfg))
    for key, value in kd.items():
        assert abs(value.item()) < 1e-4, (family, key, value.item())


@pytest.fixture(scope='module')
def coco(tmp_path_factory):
    root = tmp_path_factory.mktemp('coco')
    return {size: write_coco(str(root / str(size)), n_images=4, size=size)
            for size in sorted({input_size(f) for f in FAMILIES})}


def _all_detections(cfg: dict) -> dict:
    """The config with every score threshold at 0, so an untrained teacher still returns boxes
    (some of which overlap the ground truth) for the calibration pass."""
    cfg = copy.deepcopy(cfg)
    test_cfg = cfg['test_cfg']
    for part in (test_cfg, test_cfg.get('rcnn') or {}):
        if 'score_thr' in part:
            part['score_thr'] = 0.0
    return cfg


def _calib_loader(family, calib, size):
    loader = train_config(tiny_model(family), calib, size=size)['val_dataloader']
    if family_test_pipeline(family) is not None:
        loader['dataset']['pipeline'] = family_test_pipeline(family)
    return loader


def _annotate_with_top_detections(family, t_path, t_ckpt, calib, size):
    """Rewrite the calibration split's annotations as the teacher's own best detection per
    image: an untrained teacher then has detections that match (and others that do not)."""
    import json
    import os.path as osp
    teacher = MODELS.build(ConfigDict(Config.fromfile(t_path).model))
    teacher.load_state_dict(load_checkpoint_file(t_ckpt)['state_dict'])
    teacher.eval()
    loader = Runner.build_dataloader(_calib_loader(family, calib, size), seed=0)
    path = osp.join(calib['root'], calib['ann'])
    with open(path) as f:
        ann = json.load(f)
    ann['annotations'] = []
    with torch.no_grad():
        for data in loader:
            data = teacher.data_preprocessor(data, False)
            for res in teacher.predict(data['inputs'], data['data_samples'], rescale=True):
                pred = res.pred_instances
                h, w = res.ori_shape[:2]
                b = pred.bboxes
                cx, cy = (b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2
                valid = ((b[:, 2] > b[:, 0] + 1) & (b[:, 3] > b[:, 1] + 1)  # area, centre inside
                         & (cx > 0) & (cx < w) & (cy > 0) & (cy < h))
                best = int(torch.where(valid, pred.scores, -1.0).argmax())
                x1, y1, x2, y2 = b[best].tolist()
                ann['annotations'].append(dict(
                    id=len(ann['annotations']) + 1, image_id=res.img_id,
                    category_id=int(pred.labels[best]) + 1, bbox=[x1, y1, x2 - x1, y2 - y1],
                    area=(x2 - x1) * (y2 - y1), iscrowd=0))
    with open(path, 'w') as f:
        json.dump(ann, f)


@pytest.mark.parametrize('family', sorted(FAMILIES))
def test_two_iteration_kd_cal_run_reloads_into_the_stock_student(family, coco, tmp_path):
    cfg = tiny_model(family)
    size = input_size(family)
    data = coco[size]
    t_path, t_ckpt, teacher = save_teacher(_all_detections(cfg), tmp_path, seed=1)
    if family in ('centernet', 'reppoints'):  # untrained, they predict zero-size boxes
        with torch.no_grad():
            if family == 'centernet':  # a 16 px size, in output-stride (4) units
                teacher.bbox_head.wh_head[-1].bias.fill_(4.0)
            else:  # spread the 9 points over +-2 strides
                teacher.bbox_head.reppoints_pts_init_out.bias.copy_(torch.linspace(-2, 2, 18))
        torch.save({'state_dict': teacher.state_dict(), 'meta': {}}, t_ckpt)
    calib = write_coco(str(tmp_path / 'calib'), n_images=2, size=size)
    # heads that declare their targets calibrate per prior; the others on their detections,
    # on a split annotated with the (untrained) teacher's own best box per image
    fit_on = 'anchors' if family in PRIOR_TARGETS else 'detections'
    if fit_on == 'detections':
        _annotate_with_top_detections(family, t_path, t_ckpt, calib, size)
    model = _distiller_cfg(family, t_path, t_ckpt, teacher_temperature=None,
                           distill_losses=_zero_floor_losses(family, cfg))
    run = train_config(model, data, max_iters=2, size=size, with_mask=family in WITH_MASK,
                       custom_hooks=[dict(type='TeacherCalibrationHook', fit_on=fit_on,
                                          objective='ece', score_thr=0.0,
                                          dataloader=_calib_loader(family, calib, size))])
    run['train_cfg']['val_interval'] = 1000
    run.update(work_dir=str(tmp_path / 'work'), experiment_name=f'family_{family}',
               val_cfg=None, val_dataloader=None, val_evaluator=None)
    Runner.from_cfg(Config(run)).train()
    ckpt = load_checkpoint_file(last_checkpoint(str(tmp_path / 'work')))
    assert ckpt['meta']['iter'] == 2 and ckpt['meta']['teacher_temperature'] > 0
    stock = MODELS.build(ConfigDict(cfg))
    result = stock.load_state_dict(ckpt['state_dict'], strict=True)
    assert not result.missing_keys and not result.unexpected_keys


# ---------------------------------------------------------------------- what outputs mean
def test_fused_scores_by_hand():
    g = torch.Generator().manual_seed(0)
    cls = torch.randn(2, 6, 3, 3, generator=g)  # 2 priors x 3 classes
    obj = torch.randn(2, 2, 3, 3, generator=g)  # one factor per prior
    yolox = DenseHeadSemantics(('cls', 'reg', 'obj'), score_factor='obj')
    got = score_logits(yolox, ([cls], [None], [obj]), 3)[0].double()
    p = cls.double().sigmoid().view(2, 2, 3, 3, 3) * obj.double().sigmoid().view(2, 2, 1, 3, 3)
    assert torch.allclose(got, torch.logit(p.view(2, 6, 3, 3)), atol=1e-6)
    paa = DenseHeadSemantics(('cls', 'reg', 'iou'), score_factor='iou', score_fusion='sqrt_mul')
    got = score_logits(paa, ([cls], [None], [obj]), 3)[0].double()
    assert torch.allclose(got, torch.logit(p.sqrt().view(2, 6, 3, 3)), atol=1e-6)
    tood = DenseHeadSemantics(('cls', 'reg'), cls_is_prob=True)
    probs = torch.tensor([[[[0.01]], [[0.5]], [[0.99]]]])
    got = score_logits(tood, ([probs], [None]), 3)[0]
    assert torch.allclose(got.sigmoid(), probs, atol=1e-6)  # 0.01 stays 0.01, not 0.5
    assert got[0, 0].item() == pytest.approx(math.log(0.01 / 0.99), abs=1e-4)


@MODELS.register_module(force=True)
class _FamilyRecordingLoss(DistillLoss):
    """Records the rows it is given."""
    input_kinds = ('logits', 'boxes')
    accepts_avg_factor = True
    accepts_weight = True
    seen = {}

    def forward(self, s, t, **kwargs):
        _FamilyRecordingLoss.seen = dict(s=s.detach(), t=t.detach(), **kwargs)
        return (s - t.detach()).abs().sum() * 0


def _flat(levels, c):
    return torch.cat([o.permute(0, 2, 3, 1).reshape(-1, c) for o in levels])


def _own_score(family, head, feats, outs):
    """The per-class score mmdet's predict ranks a family's detections by (read in its head's
    source), from its raw outputs: (M, K) in the flattened prior order."""
    k = head.cls_out_channels
    if family == 'tood':  # probabilities already
        return _flat(outs[0], k)
    if family in ('yolox', 'autoassign', 'nas_fcos', 'condinst'):  # objectness / centerness fused
        return _flat(outs[0], k).sigmoid() * _flat(outs[2], 1).sigmoid()
    if family == 'yolof':  # objectness fused inside forward: recompute from the raw convs
        c = head.cls_score(head.cls_subnet(feats[0]))
        o = head.object_pred(head.bbox_subnet(feats[0]))
        n, _, h, w = c.shape
        p = c.view(n, -1, k, h, w).sigmoid() * o.view(n, -1, 1, h, w).sigmoid()
        return _flat([p.view(n, -1, h, w)], k)
    return _flat(outs[0], k).sigmoid()  # plain sigmoid class logits


@pytest.mark.parametrize('family, inputs', [
    ('tood', 'cls'), ('yolox', 'cls'), ('vfnet', 'reg'), ('fcos', 'reg'), ('retina_sepbn', 'cls'),
    ('fsaf', 'cls'), ('fovea', 'cls'), ('free_anchor', 'cls'), ('nas_fcos', 'cls'),
    ('autoassign', 'cls'), ('centernet_update', 'cls'), ('centernet_update', 'reg'),
    ('yolof', 'cls'), ('reppoints', 'cls'), ('condinst', 'cls'), ('condinst', 'reg'),
    ('rtmdet_ins', 'cls')])
def test_teacher_targets_are_the_heads_own_scores_and_final_boxes(family, inputs, tmp_path):
    """'cls': the teacher's target is the logit of the score its predict ranks by (TOOD's
    probability, YOLOX's sigmoid(cls) x sigmoid(obj), YOLOF's fused objectness, ...); 'reg':
    VFNet's refined boxes against refined boxes (in eval mode it returns only those), and the
    teacher's eval-mode boxes in the student's training units where the student's head trains
    in strides (CenterNet-Update; an FCOS student with norm_on_bbox, its teacher without)."""
    cfg = tiny_model(family)
    t_path, t_ckpt, _ = save_teacher(cfg, tmp_path, seed=1)
    if family == 'fcos':  # a student trained in stride units, a teacher in pixels
        cfg['bbox_head']['norm_on_bbox'] = True
    model = MODELS.build(ConfigDict(_distiller_cfg(
        family, t_path, t_ckpt, teacher_temperature=2.0, bbox_head=cfg['bbox_head'],
        distill_losses=dict(loss_rec=dict(type='_FamilyRecordingLoss', inputs=inputs)))))
    model.train()
    data = batch(model, size=input_size(family), masks=family in WITH_MASK)
    model.loss(data['inputs'], data['data_samples'])
    seen = _FamilyRecordingLoss.seen
    head = model.teacher.bbox_head
    with torch.no_grad():
        feats = model.teacher.extract_feat(data['inputs'])
        outs = head(feats)
        s_outs = model.bbox_head(model.extract_feat(data['inputs']))
        head.train()  # the head alone: its training-mode outputs
        train_outs = head(feats)
        head.eval()
    if inputs == 'cls':
        want = _own_score(family, head, feats, outs).double()
        assert torch.allclose(seen['t'].double() * 2.0, torch.logit(want), atol=1e-4)
    elif family == 'vfnet':
        assert len(outs) == 2 and len(s_outs) == 3
        assert torch.allclose(seen['t'], _flat(outs[1], 4), atol=1e-5)  # teacher refined
        assert torch.allclose(seen['s'], _flat(s_outs[2], 4), atol=1e-5)  # student refined
        assert not torch.allclose(seen['s'], _flat(s_outs[1], 4))
    else:  # the eval-mode teacher's boxes (pixels) in the student's training units (strides)
        want = _flat([o / s for o, s in zip(outs[1], head.strides)], 4)
        assert torch.allclose(seen['t'], want, atol=1e-5)
        if family == 'centernet_update':  # which is what its head gives in training mode
            assert torch.allclose(want, _flat(train_outs[1], 4), atol=1e-5)
        assert torch.allclose(seen['s'], _flat(s_outs[1], 4), atol=1e-5)


@pytest.mark.parametrize('family', ['fcos', 'retina_sepbn', 'fsaf', 'fovea', 'nas_fcos', 'yolof',
                                    'condinst'])
def test_prior_targets_line_up_with_the_priors(family):
    """The per-prior labels of ``fit_on='anchors'`` come out in the score layout (level, image,
    y, x, prior): image 0 holds one tall class-0 box, image 1 one class-2 box elsewhere; each
    image's positives carry its class, and (where assignment is by position) their prior centres
    lie in its box (a y/x or image mix-up breaks both)."""
    from mmengine.structures import InstanceData
    model = MODELS.build(ConfigDict(tiny_model(family)))
    model.eval()
    head = model.bbox_head
    boxes = torch.tensor([[8., 40., 56., 120.], [72., 8., 120., 56.]])
    gt = [InstanceData(bboxes=boxes[i:i + 1], labels=torch.tensor([2 * i])) for i in range(2)]
    metas = [dict(img_shape=(128, 128), pad_shape=(128, 128), batch_input_shape=(128, 128))] * 2
    sem = DENSE_HEADS[type(head).__name__]
    with torch.no_grad():
        outs = head(model.extract_feat(torch.randn(2, 3, 128, 128)))
        labels, weights = sem.prior_targets(head, sem, outs, gt, metas, None)
    sizes = [c.shape[-2:] for c in sem.output(outs, 'cls')]
    priors = head.prior_generator.grid_priors(sizes, device='cpu')
    centres = torch.cat([p[:, :2] if p.shape[1] == 2 else (p[:, :2] + p[:, 2:]) / 2
                         for p in priors])
    for i in range(2):
        lab = torch.cat([lv[i].reshape(-1) for lv in labels])
        wt = torch.cat([w[i].reshape(-1) for w in weights])
        assert lab.shape == wt.shape == centres[:, 0].shape
        pos = (lab < 3) & (wt > 0)
        assert pos.any() and (lab[pos] == 2 * i).all(), (family, i, lab[pos])
        if family != 'yolof':  # YOLOF's uniform assigner matches the nearest predicted boxes
            x1, y1, x2, y2 = boxes[i].tolist()
            c = centres[pos]
            assert ((c[:, 0] >= x1 - 1) & (c[:, 0] <= x2 + 1) & (c[:, 1] >= y1 - 1)
                    & (c[:, 1] <= y2 + 1)).all(), (family, i, c)


def test_rtmdet_keeps_its_syncbn_switch_in_ddp(tmp_path, monkeypatch):
    import mmdet.models.detectors.rtmdet as rtmdet_module
    cfg = tiny_model('rtmdet')
    t_path, t_ckpt, _ = save_teacher(cfg, tmp_path)
    monkeypatch.setattr(rtmdet_module, 'get_world_size', lambda: 2)
    model = MODELS.build(ConfigDict(_distiller_cfg('rtmdet', t_path, t_ckpt,
                                                   teacher_temperature=1.0)))
    assert type(model).__name__ == 'DistillRTMDet'
    assert any(isinstance(m, torch.nn.SyncBatchNorm) for m in model.backbone.modules())


def test_feature_adapter_96_to_128_stays_out_of_the_student_checkpoint(tmp_path):
    """RTMDet-tiny-like (96-wide neck) distilled from an -s-like teacher (128): the adapter
    trains but the checkpoint is a plain student's."""
    teacher_cfg = tiny_model('rtmdet')
    for key, width in (('neck', 128), ('bbox_head', 128)):
        teacher_cfg[key]['out_channels' if key == 'neck' else 'in_channels'] = width
    teacher_cfg['bbox_head']['feat_channels'] = 128
    t_path, t_ckpt, _ = save_teacher(teacher_cfg, tmp_path)
    student = tiny_model('rtmdet')
    student['neck']['out_channels'] = student['bbox_head']['in_channels'] = 96
    student['bbox_head']['feat_channels'] = 96
    cfg = dict(student, type='DistillRTMDet', teacher_config=t_path, teacher_ckpt=t_ckpt,
               teacher_temperature=1.0,
               distill_losses=dict(loss_fit=dict(type='FeatureMSELoss', inputs='neck',
                                                 student_channels=96, teacher_channels=128)))
    model = MODELS.build(ConfigDict(cfg))
    plain = MODELS.build(ConfigDict(student))
    assert set(model.state_dict()) == set(plain.state_dict())
    assert 'distill_losses.loss_fit.adapter.weight' in model.distill_state_dict()
    plain.load_state_dict(model.state_dict(), strict=True)
    model.train()
    data = batch(model, size=64)
    loss = model.loss(data['inputs'], data['data_samples'])['loss_fit']
    loss.backward()
    assert model.distill_losses.loss_fit.adapter.weight.grad.abs().sum() > 0


def test_crosskd_and_cascade_build_errors(tmp_path):
    cfg = tiny_model('faster_rcnn')
    t_path, t_ckpt, _ = save_teacher(cfg, tmp_path, 'frcnn')
    c_path, c_ckpt, _ = save_teacher(tiny_model('cascade_rcnn'), tmp_path, 'cascade')
    with pytest.raises(ValueError, match='must be a cascade'):
        MODELS.build(ConfigDict(_distiller_cfg('cascade_rcnn', t_path, t_ckpt,
                                               teacher_temperature=1.0)))
    with pytest.raises(ValueError, match=r'teacher is a 3-stage cascade but the student has one '
                                         r'RoI stage: set model.teacher_roi_stage to the teacher '
                                         r'stage in \[0, 3\) .*got None'):
        MODELS.build(ConfigDict(_distiller_cfg('faster_rcnn', c_path, c_ckpt,
                                               teacher_temperature=1.0)))
    with pytest.raises(ValueError, match='this pair has no such choice'):
        MODELS.build(ConfigDict(_distiller_cfg('faster_rcnn', t_path, t_ckpt,
                                               teacher_temperature=1.0, teacher_roi_stage=0)))
    with pytest.raises(ValueError, match=r'roi_stages must list distinct stages in \[0, 3\)'):
        MODELS.build(ConfigDict(_distiller_cfg('cascade_rcnn', c_path, c_ckpt,
                                               teacher_temperature=1.0, roi_stages=[3])))
    y_path, y_ckpt, _ = save_teacher(tiny_model('yolox'), tmp_path, 'yolox')
    with pytest.raises(ValueError, match='CrossKD is supported for GFLHead, RetinaHead, ATSSHead'):
        MODELS.build(ConfigDict(_distiller_cfg('yolox', y_path, y_ckpt, teacher_temperature=1.0,
                                               crosskd=dict(layer=0))))
    g_path, g_ckpt, _ = save_teacher(tiny_model('gfl'), tmp_path, 'gfl')
    with pytest.raises(ValueError, match=r'crosskd.layer must be an int in \[0, 1\]'):
        MODELS.build(ConfigDict(dict(_distiller_cfg('gfl', g_path, g_ckpt,
                                                    teacher_temperature=1.0),
                                     crosskd=dict(layer=2))))
    # towers of another width: refused at build time, not at the first loss()
    narrow = tiny_model('gfl')
    narrow['bbox_head']['feat_channels'] = narrow['bbox_head']['feat_channels'] // 2
    with pytest.raises(ValueError, match=r'tower width \(feat_channels\) \d+, the teacher \d+'):
        MODELS.build(ConfigDict(dict(narrow, type='DistillGFL',
                                     teacher_config=g_path, teacher_ckpt=g_ckpt,
                                     teacher_temperature=1.0, crosskd=dict(layer=1))))
    with pytest.raises(ValueError, match="inputs must be one of"):
        MODELS.build(ConfigDict(dict(_distiller_cfg('gfl', g_path, g_ckpt,
                                                    teacher_temperature=1.0), crosskd=None,
                                     distill_losses=dict(loss_x=dict(type='BinaryKDLoss',
                                                                     inputs='crosskd_cls')))))


@MODELS.register_module(force=True)
class _MaskRecordingLoss(DistillLoss):
    """Records the mask rows it is given."""
    input_kinds = ('masks',)
    accepts_avg_factor = True
    seen = {}

    def forward(self, s, t, avg_factor):
        _MaskRecordingLoss.seen = dict(s=s.detach(), t=t.detach(), avg_factor=avg_factor)
        return (s - t).sum() * 0


def test_rtmdet_ins_mask_kd_targets_by_hand_on_a_planted_kernel(tmp_path, monkeypatch):
    """The teacher's kernels are planted so that its 3 dynamic convs give, for the instance at
    prior (px, py) of stride s, the logit x_rel + 0.5 at every mask pixel, where x_rel =
    (px - 8 j) / (8 s) is mmdet's relative x coordinate of column j (mask features at stride
    8): the target at each of the student's positive priors, row by row."""
    from mmdet.models.dense_heads import RTMDetInsSepBNHead
    cfg = tiny_model('rtmdet_ins')
    t_path, t_ckpt, _ = save_teacher(cfg, tmp_path, seed=1)
    model = MODELS.build(ConfigDict(_distiller_cfg('rtmdet_ins', t_path, t_ckpt,
                                                   teacher_temperature=1.0,
                                                   distill_losses=dict(loss_kd_mask=dict(
                                                       type='_MaskRecordingLoss',
                                                       inputs='mask')))))
    head = model.teacher.bbox_head
    c, p = head.dyconv_channels, head.num_prototypes
    w0, w1, w2 = torch.zeros(c, p + 2), torch.eye(c), torch.zeros(1, c)
    w0[0, 0], w0[1, 0] = 1.0, -1.0  # relu(x_rel) and relu(-x_rel)
    w2[0, 0], w2[0, 1] = 1.0, -1.0  # their difference: x_rel
    b = torch.zeros(2 * c + 1)
    b[-1] = 0.5
    params = torch.cat([w0.flatten(), w1.flatten(), w2.flatten(), b])
    assert params.numel() == head.num_gen_params
    with torch.no_grad():
        for conv in head.rtm_kernel:
            conv.weight.zero_()
            conv.bias.copy_(params)
    seen = {}
    original = RTMDetInsSepBNHead.loss_mask_by_feat

    def record(self, mask_feats, flatten_kernels, sampling_results_list, batch_gt_instances):
        seen['results'], seen['hw'] = sampling_results_list, mask_feats.shape[-2:]
        return original(self, mask_feats, flatten_kernels, sampling_results_list,
                        batch_gt_instances)

    monkeypatch.setattr(RTMDetInsSepBNHead, 'loss_mask_by_feat', record)
    model.train()
    data = batch(model, size=64, masks=True)
    model.loss(data['inputs'], data['data_samples'])
    got = _MaskRecordingLoss.seen
    priors = torch.cat([r.pos_priors for r in seen['results']])
    h, w = seen['hw']
    assert priors.shape[0] > 0 and got['t'].shape == got['s'].shape == (priors.shape[0], h * w)
    cols = 8.0 * torch.arange(w).float()
    want = ((priors[:, :1] - cols) / (8 * priors[:, 2:3]) + 0.5)[:, None, :].expand(-1, h, w)
    assert torch.allclose(got['t'], want.reshape(-1, h * w), atol=1e-5)
    assert got['avg_factor'].item() == priors.shape[0] * h * w


def test_condinst_mask_kd_targets_by_hand_on_a_planted_controller(tmp_path, monkeypatch):
    """The teacher's controller (the conv that predicts each prior's dynamic mask-head
    parameters) is planted so that its 3 dynamic convs give, for the instance at point (px, py)
    of stride s, the logit x_rel + 0.5 at every mask pixel, where x_rel = (px - 8 (j + 0.5)) /
    (8 s) is mmdet's relative x coordinate of column j (mask features at stride 8 with point
    offset 0.5, size_of_interest 8; mask_out_stride 8, so no upsampling follows), plus, in the
    last bias, a code of the prior's place (px / 64 + py / 256 + image / 8) that a misplaced
    prior or image would change: the target at each of the student's positive priors."""
    from mmdet.models.dense_heads import CondInstMaskHead
    cfg = tiny_model('condinst')
    cfg['mask_head']['mask_out_stride'] = 8
    t_path, t_ckpt, _ = save_teacher(cfg, tmp_path, seed=1)
    model = MODELS.build(ConfigDict(dict(_distiller_cfg('condinst', t_path, t_ckpt,
                                                        teacher_temperature=1.0,
                                                        distill_losses=dict(loss_kd_mask=dict(
                                                            type='_MaskRecordingLoss',
                                                            inputs='mask'))),
                                         mask_head=cfg['mask_head'])))
    head = model.teacher.mask_head
    c = head.feat_channels
    w0, w1, w2 = torch.zeros(c, head.in_channels + 2), torch.eye(c), torch.zeros(1, c)
    w0[0, 0], w0[1, 0] = 1.0, -1.0  # relu(x_rel) and relu(-x_rel)
    w2[0, 0], w2[0, 1] = 1.0, -1.0  # their difference: x_rel
    b = torch.zeros(2 * c + 1)
    b[-1] = 0.5
    params = torch.cat([w0.flatten(), w1.flatten(), w2.flatten(), b])
    assert params.numel() == head.num_params == model.teacher.bbox_head.num_params
    with torch.no_grad():
        model.teacher.bbox_head.controller.weight.zero_()
        model.teacher.bbox_head.controller.bias.copy_(params)
    levels = []

    def code_place(_conv, _args, out):  # called once per level, in level order
        stride = model.teacher.bbox_head.strides[len(levels)]
        levels.append(stride)
        n, _, h, w = out.shape
        y, x = ((torch.arange(size).float() + 0.5) * stride for size in (h, w))
        code = x[None, None, :] / 64 + y[None, :, None] / 256 + torch.arange(n)[:, None, None] / 8
        return torch.cat([out[:, :-1], out[:, -1:] + code[:, None]], 1)

    model.teacher.bbox_head.controller.register_forward_hook(code_place)
    seen = []
    original = CondInstMaskHead.forward_single

    def record(self, mask_feat, positive_info):
        if self is model.mask_head:
            seen.append((positive_info, mask_feat.shape[-2:]))
        return original(self, mask_feat, positive_info)

    monkeypatch.setattr(CondInstMaskHead, 'forward_single', record)
    model.train()
    data = batch(model, size=input_size('condinst'), masks=True)
    model.loss(data['inputs'], data['data_samples'])
    got = _MaskRecordingLoss.seen
    points = torch.cat([info.points for info, _ in seen])
    strides = torch.cat([info.strides for info, _ in seen]).float()
    h, w = seen[0][1]
    assert points.shape[0] > 0 and got['t'].shape == got['s'].shape == (points.shape[0], h * w)
    cols = 8.0 * (torch.arange(w).float() + 0.5)
    image = torch.cat([torch.full((len(info),), i / 8) for i, (info, _) in enumerate(seen)])
    code = points[:, 0] / 64 + points[:, 1] / 256 + image
    want = (points[:, :1] - cols) / (8 * strides[:, None]) + 0.5 + code[:, None]
    assert len(seen) == 2 and len(levels) == 5 and image.max() > 0  # both images have priors
    assert torch.allclose(got['t'], want[:, None, :].expand(-1, h, w).reshape(-1, h * w),
                          atol=1e-5)
    assert got['avg_factor'].item() == points.shape[0] * h * w


def test_condinst_mask_kd_rows_of_a_copy_skip_an_image_without_instances(tmp_path):
    """A copy of the student as teacher: its mask logits equal the student's row by row, one
    row per positive prior of the image with instances; the image without any adds none."""
    cfg = tiny_model('condinst')
    t_path, t_ckpt, teacher = save_teacher(cfg, tmp_path, seed=1)
    model = MODELS.build(ConfigDict(_distiller_cfg('condinst', t_path, t_ckpt,
                                                   teacher_temperature=1.0,
                                                   teacher_inference=dict(fuse_conv_bn=False),
                                                   distill_losses=dict(loss_kd_mask=dict(
                                                       type='_MaskRecordingLoss',
                                                       inputs='mask')))))
    model.load_state_dict(teacher.state_dict(), strict=True)
    model.train()
    model.teacher.train()  # batch statistics on both sides
    data = batch(model, size=input_size('condinst'), masks=True)
    data['data_samples'][1].gt_instances = data['data_samples'][1].gt_instances[:0]
    with OutputTaps() as taps:
        taps.module_output('mask_feats', model.mask_head.mask_feature_head)
        model.loss(data['inputs'], data['data_samples'])
    got = _MaskRecordingLoss.seen
    h, w = taps['mask_feats'][0].shape[-2:]
    pos = model.bbox_head.get_positive_infos()  # mmdet's own record of the last step's priors
    assert len(pos[0]) > 0 and len(pos[1]) == 0
    assert got['s'].shape == got['t'].shape == (len(pos[0]), 4 * h * w)  # upsampled x 2
    assert torch.allclose(got['s'], got['t'], atol=1e-5)


def test_mask_kd_is_refused_for_yolact_and_other_mask_strides_with_the_reason(tmp_path):
    cfg = tiny_model('yolact')
    t_path, t_ckpt, _ = save_teacher(cfg, tmp_path)
    with pytest.raises(ValueError, match=(
            r"distill_losses.loss_kd_mask: inputs='mask' needs per-prior mask kernels "
            r'\(RTMDet-Ins, CondInst, BoxInst\); YOLACTProtonet crops the sigmoid of prototypes '
            r"x coefficients to each box. Remove it; the box head distils \('cls', 'reg', "
            r"'neck'\).")):
        MODELS.build(ConfigDict(_distiller_cfg('yolact', t_path, t_ckpt,
                                               teacher_temperature=1.0, distill_losses=dict(
                                                   loss_kd_mask=dict(type='BinaryKDLoss',
                                                                     inputs='mask')))))
    cfg = tiny_model('condinst')
    t_path, t_ckpt, _ = save_teacher(cfg, tmp_path, 'condinst')
    student = _distiller_cfg('condinst', t_path, t_ckpt, teacher_temperature=1.0,
                             distill_losses=dict(loss_kd_mask=dict(type='BinaryKDLoss',
                                                                   inputs='mask')))
    student['mask_head'] = dict(student['mask_head'], mask_out_stride=8)
    with pytest.raises(ValueError, match=(
            r"distill_losses.loss_kd_mask: inputs='mask' compares mask logits pixel by pixel: "
            r"set model.mask_head \(mask_feat_stride, mask_out_stride\) to the teacher's "
            r'\(8, 4\), not \(8, 8\).')):
        MODELS.build(ConfigDict(student))
