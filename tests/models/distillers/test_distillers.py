"""The distillers: teacher handling, temperature plumbing, losses on the right outputs, errors."""
import pytest
import torch

import mmkdcal  # noqa: F401
from mmdet.registry import MODELS

from _helpers import (batch as _batch, distiller as _distiller, dump_config, faster_rcnn_model,
                      gfl_model, retinanet_model, save_teacher as _save_teacher)

torch.set_num_threads(1)


KD = dict(loss_kd=dict(type='BinaryKDLoss', inputs='cls', beta=0.0, loss_weight=1.0))


@pytest.fixture(scope='module')
def gfl_teacher(tmp_path_factory):
    return _save_teacher(gfl_model(width=16, stacked_convs=2), tmp_path_factory.mktemp('gfl'))


def test_teacher_is_frozen_hidden_and_moves(gfl_teacher):
    cfg_path, ckpt, ref = gfl_teacher
    model = _distiller(gfl_model(width=8), cfg_path, ckpt, teacher_temperature=2.0,
                       distill_losses=KD, teacher_inference=dict(fuse_conv_bn=False))
    # weights come from the checkpoint (unfolded: folding rewrites conv+BN pairs)
    for k, v in ref.state_dict().items():
        assert torch.equal(model.teacher.state_dict()[k], v)
    # not a sub-module: a plain student checkpoint and parameter list
    student = MODELS.build(gfl_model(width=8))
    assert set(model.state_dict()) == set(student.state_dict())
    assert not any(k.startswith('teacher') for k in model.state_dict())
    assert sum(p.numel() for p in model.parameters()) == sum(
        p.numel() for p in student.parameters())
    assert all(not p.requires_grad for p in model.teacher.parameters())
    model.train()
    assert model.training and model.backbone.training and not model.teacher.training
    model.double()
    assert next(model.teacher.parameters()).dtype == torch.float64
    assert model._teacher_temperature.dtype == torch.float64  # buffer moved with the module
    model.float()
    # the temperature is not part of the state dict (it lives in checkpoint meta)
    assert '_teacher_temperature' not in model.state_dict()


def test_cls_kd_sees_teacher_logits_divided_by_temperature(gfl_teacher):
    cfg_path, ckpt, _ = gfl_teacher
    t_val = 2.5
    model = _distiller(gfl_model(width=8), cfg_path, ckpt, teacher_temperature=t_val,
                       distill_losses=KD)
    model.train()
    data = _batch(model)
    losses = model.loss(data['inputs'], data['data_samples'])
    assert {'loss_cls', 'loss_bbox', 'loss_dfl', 'loss_kd'} <= set(losses)

    # recompute by hand: flatten (level, image, y, x) and divide the teacher by T
    with torch.no_grad():
        s_out = model.bbox_head(model.extract_feat(data['inputs']))[0]
        t_out = model.teacher.bbox_head(model.teacher.extract_feat(data['inputs']))[0]
    s = torch.cat([o.permute(0, 2, 3, 1).reshape(-1, 3) for o in s_out])
    t = torch.cat([o.permute(0, 2, 3, 1).reshape(-1, 3) for o in t_out])
    target = (t / t_val).sigmoid()
    bce = torch.nn.functional.binary_cross_entropy_with_logits(s, target, reduction='none')
    expected = bce.sum() / t.sigmoid().max(1).values.sum().clamp(min=1)
    assert losses['loss_kd'].item() == pytest.approx(expected.item(), rel=1e-4)

    # the same student with T=1 gives a different KD loss (temperature really applied)
    model.set_teacher_temperature(1.0)
    losses1 = model.loss(data['inputs'], data['data_samples'])
    assert abs(losses1['loss_kd'].item() - losses['loss_kd'].item()) > 1e-4


def test_ld_alone_weights_by_teacher_scores_and_flattens_no_logits(gfl_teacher, monkeypatch):
    """An LD-only distiller still weights each prior by the teacher's max class probability
    (raw logits: the temperature is for class KD) and divides by their sum, and builds no class
    batch it would not use."""
    cfg_path, ckpt, _ = gfl_teacher
    model = _distiller(gfl_model(width=8), cfg_path, ckpt, teacher_temperature=3.0,
                       distill_losses=dict(loss_ld=dict(type='LDLoss', inputs='reg', tau=10.0)))
    model.train()
    data = _batch(model)
    flat_calls = []
    import mmkdcal.models.distillers.distill_single_stage as dss
    orig = dss.flatten_level_outputs

    def spy(outputs, channels):
        flat_calls.append(channels)
        return orig(outputs, channels)

    monkeypatch.setattr(dss, 'flatten_level_outputs', spy)
    losses = model.loss(data['inputs'], data['data_samples'])
    monkeypatch.undo()
    # teacher logits (for the weights) + student and teacher boxes; no student logits
    assert sorted(flat_calls) == [3, 36, 36]  # 4 sides x (reg_max 8 + 1) bins
    with torch.no_grad():
        s_cls, s_reg = model.bbox_head(model.extract_feat(data['inputs']))
        t_cls, t_reg = model.teacher.bbox_head(model.teacher.extract_feat(data['inputs']))

    def flat(outs, c):
        return torch.cat([o.permute(0, 2, 3, 1).reshape(-1, c) for o in outs])

    w = flat(t_cls, 3).sigmoid().max(1).values
    n = w.numel()
    s, t = flat(s_reg, 36).reshape(n, 4, 9), flat(t_reg, 36).reshape(n, 4, 9)
    q = (t / 10.0).softmax(-1)
    # tau^2 / bins per side, the mean of the 4 sides, LDLoss's default loss_weight 0.25
    kl = (q * (q.log() - (s / 10.0).log_softmax(-1))).sum(-1) * 100.0 / 9
    expected = 0.25 * (kl.mean(1) * w).sum() / w.sum().clamp(min=1.0)
    assert losses['loss_ld'].item() == pytest.approx(expected.item(), rel=1e-4)


def test_teacher_gets_no_gradient_and_student_does(gfl_teacher):
    cfg_path, ckpt, _ = gfl_teacher
    model = _distiller(gfl_model(width=8), cfg_path, ckpt, teacher_temperature=1.5,
                       distill_losses=dict(
                           loss_kd=dict(type='BinaryKDLoss', inputs='cls', beta=2.0),
                           loss_ld=dict(type='LDLoss', inputs='reg', tau=10.0),
                           loss_pkd=dict(type='PKDLoss', inputs='neck')))
    model.train()
    data = _batch(model)
    losses = model.loss(data['inputs'], data['data_samples'])
    total = sum(v for k, v in losses.items() if k.startswith('loss_') and torch.is_tensor(v))
    # KD-only gradient reaches the student
    model.zero_grad()
    (losses['loss_kd'] + losses['loss_ld'] + losses['loss_pkd']).backward(retain_graph=True)
    assert model.bbox_head.gfl_cls.weight.grad.abs().sum() > 0
    assert model.bbox_head.gfl_reg.weight.grad.abs().sum() > 0
    assert model.neck.fpn_convs[0].conv.weight.grad.abs().sum() > 0
    total.backward()
    assert all(p.grad is None for p in model.teacher.parameters())
    for k in ('loss_kd', 'loss_ld', 'loss_pkd'):
        assert torch.isfinite(losses[k]) and losses[k] > 0


def test_missing_temperature_fails_with_instructions(gfl_teacher):
    cfg_path, ckpt, _ = gfl_teacher
    model = _distiller(gfl_model(width=8), cfg_path, ckpt, distill_losses=KD)
    data = _batch(model)
    with pytest.raises(RuntimeError, match='TeacherCalibrationHook'):
        model.loss(data['inputs'], data['data_samples'])


def test_per_class_temperature_broadcasts_over_classes(gfl_teacher):
    cfg_path, ckpt, _ = gfl_teacher
    model = _distiller(gfl_model(width=8), cfg_path, ckpt, teacher_temperature=[1.0, 2.0, 4.0],
                       distill_losses=KD)
    logits = torch.tensor([[2.0, 2.0, 2.0], [-4.0, 8.0, 12.0]])
    assert torch.allclose(model.scale_teacher_logits(logits),
                          torch.tensor([[2.0, 1.0, 0.5], [-4.0, 4.0, 3.0]]))
    with pytest.raises(ValueError, match='3 classification logits'):
        model.set_teacher_temperature([1.0, 2.0])


@pytest.mark.parametrize('temperature,exc,match', [
    (0.0, ValueError, 'within'), (-1.0, ValueError, 'within'), (float('nan'), ValueError, 'finite'),
    (1e-40, ValueError, r'within \[0.001, 1000\]'), (1e9, ValueError, 'within'),
    (True, TypeError, 'must be a number'), ('abc', TypeError, 'model.teacher_temperature must be'),
    ([[1.0, 2.0]], TypeError, 'must be a number'), ([1.0, 2.0], ValueError, '3 classification')])
def test_bad_temperature_fails_at_build(gfl_teacher, temperature, exc, match):
    cfg_path, ckpt, _ = gfl_teacher
    with pytest.raises(exc, match=match):
        _distiller(gfl_model(width=8), cfg_path, ckpt, teacher_temperature=temperature)


def test_build_errors_name_the_field(gfl_teacher, tmp_path):
    cfg_path, ckpt, _ = gfl_teacher
    student = gfl_model(width=8)
    with pytest.raises(ValueError, match='teacher_ckpt is required'):
        _distiller(student, cfg_path, None)
    with pytest.raises(FileNotFoundError, match='teacher_ckpt'):
        _distiller(student, cfg_path, str(tmp_path / 'missing.pth'))
    corrupt = tmp_path / 'corrupt.pth'
    corrupt.write_bytes(b'this is not a checkpoint')
    with pytest.raises(RuntimeError, match='could not be read'):
        _distiller(student, cfg_path, str(corrupt))
    # a checkpoint of another architecture
    other_cfg, other_ckpt, _ = _save_teacher(retinanet_model(width=16), tmp_path, 'other')
    with pytest.raises(RuntimeError, match='missing from it'):
        _distiller(student, cfg_path, other_ckpt)
    # class-count mismatch
    k4_cfg, k4_ckpt, _ = _save_teacher(gfl_model(width=16, num_classes=4), tmp_path, 'k4')
    with pytest.raises(ValueError, match='Class-count mismatch'):
        _distiller(student, k4_cfg, k4_ckpt, teacher_temperature=1.0)
    # head-layout mismatch (strides)
    rs_cfg, rs_ckpt, _ = _save_teacher(retinanet_model(width=16, strides=(8, 16, 64)), tmp_path,
                                       'rs')
    with pytest.raises(ValueError, match='strides'):
        _distiller(retinanet_model(width=8), rs_cfg, rs_ckpt, teacher_temperature=1.0)
    with pytest.raises(ValueError, match='inputs'):
        _distiller(student, cfg_path, ckpt, distill_losses=dict(
            loss_kd=dict(type='BinaryKDLoss', inputs='logits')))
    with pytest.raises(ValueError, match='must start with "loss_"'):
        _distiller(student, cfg_path, ckpt, distill_losses=dict(
            kd=dict(type='BinaryKDLoss', inputs='cls')))
    # normalisation mismatch between teacher and student
    odd = gfl_model(width=16, stacked_convs=2)
    odd['data_preprocessor']['std'] = [1.0, 1.0, 1.0]
    odd_cfg = dump_config(dict(model=odd), str(tmp_path / 'odd.py'))
    with pytest.raises(ValueError, match='std'):
        _distiller(student, odd_cfg, ckpt)


def test_nan_teacher_fails_at_build_and_inf_logits_fail_the_step(gfl_teacher, tmp_path):
    cfg_path, ckpt, ref = gfl_teacher
    state = {k: v.clone() for k, v in ref.state_dict().items()}
    state['bbox_head.gfl_cls.bias'][:] = float('nan')
    bad = str(tmp_path / 'nan.pth')
    torch.save({'state_dict': state}, bad)
    with pytest.raises(ValueError, match=r"NaN/inf weights .*bbox_head\.gfl_cls\.bias"):
        _distiller(gfl_model(width=8), cfg_path, bad, teacher_temperature=1.0,
                   distill_losses=KD)
    # outputs that overflow at run time (e.g. under fp16) are caught in the step
    model = _distiller(gfl_model(width=8), cfg_path, ckpt, teacher_temperature=1.0,
                       distill_losses=KD)
    with torch.no_grad():
        model.teacher.bbox_head.gfl_cls.bias[:] = float('inf')
    data = _batch(model)
    with pytest.raises(FloatingPointError, match='NaN/inf classification logits'):
        model.loss(data['inputs'], data['data_samples'])


def test_retinanet_multi_anchor_alignment(tmp_path):
    """9 anchors per location: rows of flattened cls and box outputs line up per anchor."""
    cfg_path, ckpt, _ = _save_teacher(retinanet_model(width=16), tmp_path)
    model = _distiller(retinanet_model(width=8), cfg_path, ckpt, teacher_temperature=1.0,
                       distill_losses=dict(
                           loss_kd=dict(type='BinaryKDLoss', inputs='cls'),
                           loss_fit=dict(type='BoxKDLoss', inputs='reg')))
    data = _batch(model)
    seen = {}
    orig = model.distill_losses['loss_fit'].forward

    def record(s, t, weight=None, avg_factor=None):
        seen.update(s=s, t=t, weight=weight)
        return (s - t).pow(2).mean()
    model.distill_losses['loss_fit'].forward = record
    model.loss(data['inputs'], data['data_samples'])
    model.distill_losses['loss_fit'].forward = orig
    # 6 anchors per location (2 scales x 3 ratios), 4 box deltas per anchor
    n_loc = sum(2 * (64 // s) ** 2 for s in (8, 16, 32))
    assert seen['s'].shape == (n_loc * 6, 4) and seen['weight'].shape == (n_loc * 6,)
    with torch.no_grad():
        t_reg = model.teacher.bbox_head(model.teacher.extract_feat(data['inputs']))[1][0]
    # row 0..5 are the 6 anchors of image 0, location (0, 0) of level 0
    assert torch.allclose(seen['t'][:6], t_reg[0, :, 0, 0].reshape(6, 4))


def test_two_stage_roi_kd_on_student_rois(tmp_path):
    cfg_path, ckpt, _ = _save_teacher(faster_rcnn_model(width=16), tmp_path)
    model = _distiller(faster_rcnn_model(width=8), cfg_path, ckpt, teacher_temperature=3.0,
                       distill_losses=dict(
                           loss_kd_roi=dict(type='KDLoss', inputs='roi_cls', tau=1.0),
                           loss_dkd_roi=dict(type='DKDLoss', inputs='roi_cls'),
                           loss_kd_rpn=dict(type='BinaryKDLoss', inputs='rpn_cls')))
    model.train()
    data = _batch(model)
    seen = {}
    t_fwd = model.teacher.roi_head._bbox_forward

    def teacher_bbox_forward(x, rois):
        seen['rois'] = rois
        out = t_fwd(x, rois)
        seen['t_logits'] = out['cls_score'].clone()
        return out
    model.teacher.roi_head._bbox_forward = teacher_bbox_forward
    kd = model.distill_losses['loss_kd_roi']
    kd_fwd = kd.forward

    def kd_record(s, t, *a, **k):
        seen['s'], seen['t'] = s, t
        return kd_fwd(s, t, *a, **k)
    kd.forward = kd_record
    losses = model.loss(data['inputs'], data['data_samples'])
    for k in ('loss_rpn_cls', 'loss_cls', 'loss_kd_roi', 'loss_dkd_roi', 'loss_kd_rpn'):
        assert k in losses
    # the teacher classified exactly the student's sampled RoIs, and KD saw its logits / T
    n_rois = seen['rois'].shape[0]
    assert seen['s'].shape == (n_rois, 4) and seen['t'].shape == (n_rois, 4)
    assert torch.allclose(seen['t'], seen['t_logits'] / 3.0)
    total = sum(v for k, v in losses.items() if k.startswith('loss_') and torch.is_tensor(v))
    total.backward()
    assert all(p.grad is None for p in model.teacher.parameters())
    assert model.roi_head.bbox_head.fc_cls.weight.grad.abs().sum() > 0


def test_teacher_ckpt_directory_and_wrong_teacher_family_named_first(gfl_teacher, tmp_path):
    cfg_path, ckpt, _ = gfl_teacher
    with pytest.raises(IsADirectoryError, match='is a directory; point it at the teacher'):
        _distiller(gfl_model(width=8), cfg_path, str(tmp_path))
    # a teacher config of another family, with a checkpoint that does not fit it either and
    # another normalisation: the family is what is reported (checked before the checkpoint)
    other = retinanet_model(width=16)
    other['data_preprocessor']['std'] = [1.0, 1.0, 1.0]
    other_cfg = dump_config(dict(model=other), str(tmp_path / 'retina.py'))
    with pytest.raises(ValueError, match="loss_kd: teacher RetinaHead / student GFLHead: "
                                         r"neck-feature KD .* allowed, .*inputs='cls' needs the "
                                         'same head layout'):
        _distiller(gfl_model(width=8), other_cfg, ckpt, distill_losses=KD)
    # a student/teacher pair whose normalisations differ only by one leaving it out
    plain = gfl_model(width=16, stacked_convs=2)
    plain['data_preprocessor'].pop('mean')
    plain['data_preprocessor'].pop('std')
    plain_cfg = dump_config(dict(model=plain), str(tmp_path / 'plain.py'))
    with pytest.raises(ValueError, match='no mean/std means no normalisation'):
        _distiller(gfl_model(width=8), plain_cfg, ckpt)
    # the same colours in reversed channel order (an RTMDet student, BGR; most teachers, RGB)
    bgr = gfl_model(width=8)
    pre = bgr['data_preprocessor']
    pre.update(mean=pre['mean'][::-1], std=pre['std'][::-1], bgr_to_rgb=not pre['bgr_to_rgb'])
    with pytest.raises(ValueError, match=r'reversed channel order \(data_preprocessor.bgr_to_rgb '
                                         r'is True for the teacher, False for the student\)'):
        _distiller(bgr, cfg_path, ckpt)
