"""The distiller/loss contract: impossible pairs fail at build time, losses get exactly what they
declare, distillation-only state stays out of the student checkpoint, and the two-stage distiller
rides MMDetection's own training code."""
import copy
import uuid

import pytest
import torch
from mmengine.config import ConfigDict
from mmengine.logging import MessageHub
from mmengine.optim import OptimWrapper

import mmkdcal  # noqa: F401
from mmdet.registry import MODELS
from mmkdcal.models.distillers import DistillBatch, DistillInput, call_distill_loss
from mmkdcal.models.losses import DistillLoss

from _helpers import (batch as _batch, distiller as _distiller, faster_rcnn_model, gfl_model,
                      retinanet_model, save_teacher as _save_teacher)

torch.set_num_threads(1)


@pytest.fixture(scope='module')
def gfl_teacher(tmp_path_factory):
    return _save_teacher(gfl_model(width=16, stacked_convs=2), tmp_path_factory.mktemp('gfl'))


@pytest.fixture(scope='module')
def frcnn_teacher(tmp_path_factory):
    return _save_teacher(faster_rcnn_model(width=16), tmp_path_factory.mktemp('frcnn'))


def _losses(**cfgs):
    return {name: dict(cfg) for name, cfg in cfgs.items()}


@pytest.mark.parametrize('loss_cfg,match', [
    # DKD needs labels (and softmax logits): dense per-prior logits have neither
    (dict(type='DKDLoss', inputs='cls'), r'distill_losses\.loss_x cannot work: DKDLoss treats '
                                         r'logits as softmax'),
    (dict(type='FeatureMSELoss', inputs='cls'), 'FeatureMSELoss compares features'),
    (dict(type='KDLoss', inputs='neck'), 'KDLoss compares logits'),
    (dict(type='MLKDLoss', inputs='cls'), 'MLKDLoss treats logits as softmax'),
    # GFL's 'reg' are distributions, RetinaNet's are box deltas
    (dict(type='BinaryKDLoss', inputs='reg'), 'BinaryKDLoss compares logits or masks'),
])
def test_impossible_pairs_fail_when_the_model_is_built(gfl_teacher, loss_cfg, match):
    cfg_path, ckpt, _ = gfl_teacher
    with pytest.raises(ValueError, match=match) as err:
        _distiller(gfl_model(width=8), cfg_path, ckpt, teacher_temperature=1.0,
                   distill_losses=dict(loss_x=loss_cfg))
    # the message says which inputs the loss could use instead
    assert 'inputs that' in str(err.value) or 'has no input that' in str(err.value)


def test_dkd_on_dense_cls_names_labels_when_activation_fits(tmp_path):
    """A softmax dense head: DKD's remaining problem is the missing labels."""
    cfg = retinanet_model(width=16)
    cfg['bbox_head']['loss_cls'] = dict(type='CrossEntropyLoss', use_sigmoid=False)
    t_path, t_ckpt, _ = _save_teacher(cfg, tmp_path)
    student = retinanet_model(width=8)
    student['bbox_head']['loss_cls'] = dict(type='CrossEntropyLoss', use_sigmoid=False)
    with pytest.raises(ValueError, match="DKDLoss needs the class label of every row, but "
                                         "inputs='cls'"):
        _distiller(student, t_path, t_ckpt, teacher_temperature=1.0,
                   distill_losses=dict(loss_dkd=dict(type='DKDLoss', inputs='cls')))


def test_ld_on_box_deltas_and_binary_kd_on_softmax_rois_fail(tmp_path, frcnn_teacher):
    t_path, t_ckpt, _ = _save_teacher(retinanet_model(width=16), tmp_path)
    with pytest.raises(ValueError, match="LDLoss compares distribution, but inputs='reg' gives "
                                         'per-prior box regression outputs'):
        _distiller(retinanet_model(width=8), t_path, t_ckpt, teacher_temperature=1.0,
                   distill_losses=dict(loss_ld=dict(type='LDLoss', inputs='reg')))
    f_path, f_ckpt, _ = frcnn_teacher
    with pytest.raises(ValueError, match='BinaryKDLoss treats logits as sigmoid'):
        _distiller(faster_rcnn_model(width=8), f_path, f_ckpt, teacher_temperature=1.0,
                   distill_losses=dict(loss_b=dict(type='BinaryKDLoss', inputs='roi_cls')))
    with pytest.raises(ValueError, match=r"inputs must be one of \['roi_cls', 'rpn_cls', "
                                         r"'neck'\]"):
        _distiller(faster_rcnn_model(width=8), f_path, f_ckpt, teacher_temperature=1.0,
                   distill_losses=dict(loss_b=dict(type='KDLoss', inputs='cls')))


def test_a_distill_loss_may_not_replace_a_task_loss(gfl_teacher):
    cfg_path, ckpt, _ = gfl_teacher
    with pytest.raises(ValueError, match="'loss_cls' is a name the student's own losses use"):
        _distiller(gfl_model(width=8), cfg_path, ckpt, teacher_temperature=1.0,
                   distill_losses=dict(loss_cls=dict(type='BinaryKDLoss', inputs='cls')))


def test_non_declaring_loss_is_refused(gfl_teacher):
    cfg_path, ckpt, _ = gfl_teacher
    with pytest.raises(TypeError, match='is not an mmkdcal DistillLoss'):
        _distiller(gfl_model(width=8), cfg_path, ckpt, teacher_temperature=1.0,
                   distill_losses=dict(loss_kd_l1=dict(type='L1Loss', inputs='cls')))


def _narrow_neck(width, out_channels):
    cfg = gfl_model(width=width)
    cfg['neck']['out_channels'] = out_channels
    cfg['bbox_head']['in_channels'] = out_channels
    return cfg


def test_feature_widths_are_checked_at_build(gfl_teacher):
    cfg_path, ckpt, _ = gfl_teacher  # teacher neck: 16 channels
    student = _narrow_neck(8, 8)
    for loss in ('PKDLoss', 'CWDLoss', 'FeatureMSELoss'):
        with pytest.raises(ValueError, match='8 student and 16 teacher channels'):
            _distiller(student, cfg_path, ckpt, teacher_temperature=1.0,
                       distill_losses=dict(loss_f=dict(type=loss, inputs='neck')))
    with pytest.raises(ValueError, match='student_channels=4, teacher_channels=16'):
        _distiller(student, cfg_path, ckpt, teacher_temperature=1.0,
                   distill_losses=dict(loss_f=dict(type='FeatureMSELoss', inputs='neck',
                                                   student_channels=4, teacher_channels=16)))


def test_adapter_trains_but_stays_out_of_the_student_checkpoint(gfl_teacher):
    cfg_path, ckpt, _ = gfl_teacher
    student_cfg = _narrow_neck(8, 8)
    model = _distiller(student_cfg, cfg_path, ckpt, teacher_temperature=1.0,
                       distill_losses=dict(loss_fit=dict(type='FeatureMSELoss', inputs='neck',
                                                         student_channels=8,
                                                         teacher_channels=16)))
    plain = MODELS.build(ConfigDict(copy.deepcopy(student_cfg)))
    assert set(model.state_dict()) == set(plain.state_dict())
    assert set(model.distill_state_dict()) == {'distill_losses.loss_fit.adapter.weight',
                                               'distill_losses.loss_fit.adapter.bias'}
    # the adapter is trained with the student
    params = {id(p) for p in model.parameters()}
    assert id(model.distill_losses.loss_fit.adapter.weight) in params
    model.train()
    data = _batch(model)
    losses = model.loss(data['inputs'], data['data_samples'])
    losses['loss_fit'].backward()
    assert model.distill_losses.loss_fit.adapter.weight.grad.abs().sum() > 0
    # a strict load of the student's state_dict into the plain student works
    plain.load_state_dict(model.state_dict(), strict=True)
    # distillation-only state round-trips
    state = {k: v.clone() + 1 for k, v in model.distill_state_dict().items()}
    model.load_distill_state_dict(state)
    assert torch.equal(model.distill_losses.loss_fit.adapter.bias, state[
        'distill_losses.loss_fit.adapter.bias'])
    # no hook is needed: a training step updates the adapter with the student (the run keeps
    # it: tests/configs/test_all_configs_train_step.py saves and resumes one)
    wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
    before = model.distill_losses.loss_fit.adapter.weight.detach().clone()
    model.train_step(dict(inputs=list(data['inputs']), data_samples=data['data_samples']),
                     wrapper)
    assert not torch.equal(model.distill_losses.loss_fit.adapter.weight, before)


@MODELS.register_module(force=True)
class _RecordingLoss(DistillLoss):
    """A test loss that records its keyword arguments."""
    input_kinds = ('logits', )
    accepts_weight = True
    accepts_avg_factor = True

    def __init__(self, needs_labels=False, needs_iter=False):
        super().__init__()
        self.needs_labels = needs_labels
        self.needs_iter = needs_iter
        self.calls = []

    def forward(self, s, t, **kwargs):
        self.calls.append(dict(kwargs, s=s, t=t))
        return (s - t).pow(2).sum()


def test_call_passes_exactly_the_declared_arguments():
    spec = DistillInput('x', 'logits', 'test rows', provides=frozenset({'labels', 'avg_factor'}))
    s, t = torch.ones(3, 2), torch.zeros(3, 2)
    batch = DistillBatch(s, t, labels=torch.tensor([0, 1, 1]), avg_factor=torch.tensor(2.0))
    plain = _RecordingLoss()
    call_distill_loss(plain, batch, spec, cur_iter=None)
    assert set(plain.calls[0]) == {'s', 't', 'avg_factor'}  # no weight given, no labels wanted
    full = _RecordingLoss(needs_labels=True, needs_iter=True)
    call_distill_loss(full, batch, spec, cur_iter=7)
    assert set(full.calls[0]) == {'s', 't', 'avg_factor', 'labels', 'cur_iter'}
    assert full.calls[0]['cur_iter'] == 7
    with pytest.raises(RuntimeError, match='needs the training iteration'):
        call_distill_loss(full, batch, spec, cur_iter=None)
    # per-level inputs: called once per level, summed
    levels = DistillInput('f', 'logits', 'levels', per_level=True)
    total = call_distill_loss(plain, DistillBatch([s, 2 * s], [t, t]), levels, None)
    assert total.item() == pytest.approx(6.0 + 24.0)


def test_iteration_reaches_a_warmup_loss(gfl_teacher, frcnn_teacher):
    f_path, f_ckpt, _ = frcnn_teacher
    model = _distiller(faster_rcnn_model(width=8), f_path, f_ckpt, teacher_temperature=1.0,
                       distill_losses=dict(loss_dkd=dict(type='DKDLoss', inputs='roi_cls',
                                                         warmup_iters=4)))
    model.train()
    data = _batch(model)
    # outside a Runner no iteration is published: the error names the fix
    hub = MessageHub.get_instance(f'no_iter_{uuid.uuid4().hex}')
    assert MessageHub.get_current_instance() is hub
    with pytest.raises(RuntimeError, match=r"\['loss_dkd'\] need the training iteration.*"
                                           r"update_info\('iter', i\)"):
        model.loss(data['inputs'], data['data_samples'])
    # the iteration the training loop publishes (RuntimeInfoHook.before_train_iter) is used
    vals = []
    for it in (0, 3):
        hub.update_info('iter', it)
        torch.manual_seed(0)  # the same sampled RoIs
        vals.append(model.loss(data['inputs'], data['data_samples'])['loss_dkd'].item())
    assert vals[0] == pytest.approx(vals[1] / 4, rel=1e-5)  # factor (i + 1) / 4


def test_dense_teacher_runs_before_the_student(gfl_teacher):
    cfg_path, ckpt, _ = gfl_teacher
    model = _distiller(gfl_model(width=8), cfg_path, ckpt, teacher_temperature=2.0,
                       distill_losses=dict(
                           loss_kd=dict(type='BinaryKDLoss', inputs='cls'),
                           loss_ld=dict(type='LDLoss', inputs='reg', tau=10.0),
                           loss_feat=dict(type='FeatureMSELoss', inputs='neck')))
    model.train()
    data = _batch(model, n=2, size=64)
    calls = []
    for who, m in (('teacher', model.teacher), ('student', model)):
        m.backbone.register_forward_hook(lambda *a, who=who: calls.append(who))
    losses = model.loss(data['inputs'], data['data_samples'])
    # the teacher's backbone runs once, before the student's (its activations are gone by then)
    assert calls == ['teacher', 'student']
    for name in ('loss_kd', 'loss_ld', 'loss_feat'):
        assert float(losses[name]) > 0


def test_deepcopy_shares_the_frozen_teacher(gfl_teacher):
    cfg_path, ckpt, _ = gfl_teacher
    model = _distiller(gfl_model(width=8), cfg_path, ckpt, teacher_temperature=1.0,
                       distill_losses=dict(loss_kd=dict(type='BinaryKDLoss', inputs='cls')))
    clone = copy.deepcopy(model)  # e.g. an EMA copy
    assert clone.teacher is model.teacher
    assert clone.backbone is not model.backbone
    assert torch.equal(next(clone.backbone.parameters()), next(model.backbone.parameters()))


def test_two_stage_rides_mmdet_and_distils_the_sampled_rois(frcnn_teacher):
    """Task losses equal the stock Faster R-CNN's on a fixed batch; RoI KD sees exactly the
    student's sampled RoIs with their assigned labels; RPN KD is normalised as documented."""
    f_path, f_ckpt, _ = frcnn_teacher
    student_cfg = faster_rcnn_model(width=8)
    model = _distiller(student_cfg, f_path, f_ckpt, teacher_temperature=2.0, distill_losses=dict(
        loss_rec=dict(type='_RecordingLoss', inputs='roi_cls', needs_labels=True),
        loss_rpn=dict(type='BinaryKDLoss', inputs='rpn_cls')))
    stock = MODELS.build(ConfigDict(copy.deepcopy(student_cfg)))
    stock.load_state_dict(model.state_dict(), strict=True)
    model.train()
    stock.train()
    data = _batch(model)

    sampled = []
    orig_sample = model.roi_head.bbox_sampler.sample

    def record_sample(*args, **kwargs):
        res = orig_sample(*args, **kwargs)
        sampled.append(res)
        return res
    model.roi_head.bbox_sampler.sample = record_sample
    torch.manual_seed(0)
    losses = model.loss(data['inputs'], data['data_samples'])
    del model.roi_head.bbox_sampler.sample
    torch.manual_seed(0)
    ref = stock.loss(data['inputs'], data['data_samples'])
    for key, value in ref.items():
        got, want = losses[key], value
        if isinstance(want, (list, tuple)):
            for g, w in zip(got, want):
                assert torch.allclose(g, w, atol=1e-6), key
        else:
            assert torch.allclose(got, want, atol=1e-6), key
    assert set(losses) == set(ref) | {'loss_rec', 'loss_rpn'}

    call = model.distill_losses['loss_rec'].calls[-1]
    priors = torch.cat([res.priors for res in sampled])
    n = len(priors)
    assert call['s'].shape == (n, 4) and call['t'].shape == (n, 4)
    # the teacher classified exactly those boxes: recompute its logits on them by hand
    from mmdet.structures.bbox import bbox2roi
    rois = bbox2roi([res.priors for res in sampled])
    with torch.no_grad():
        t_logits = model.teacher.roi_head._bbox_forward(
            model.teacher.extract_feat(data['inputs']), rois)['cls_score']
    assert torch.allclose(call['t'], t_logits / 2.0, atol=1e-6)
    # labels: the positives' ground-truth class, then background (= num_classes) per image
    want = torch.cat([torch.cat([r.pos_gt_labels, r.pos_gt_labels.new_full(
        (len(r.neg_priors), ), 3)]) for r in sampled])
    assert torch.equal(call['labels'], want)

    # RPN KD: BCE summed over anchors, divided by the sum of the teacher's max objectness
    with torch.no_grad():
        s_rpn = model.rpn_head(model.extract_feat(data['inputs']))[0]
        t_rpn = model.teacher.rpn_head(model.teacher.extract_feat(data['inputs']))[0]
    s = torch.cat([o.permute(0, 2, 3, 1).reshape(-1, 1) for o in s_rpn])
    t = torch.cat([o.permute(0, 2, 3, 1).reshape(-1, 1) for o in t_rpn])
    bce = torch.nn.functional.binary_cross_entropy_with_logits(s, t.sigmoid(), reduction='sum')
    assert losses['loss_rpn'].item() == pytest.approx(
        (bce / t.sigmoid().sum().clamp(min=1)).item(), rel=1e-5)


def test_two_stage_with_given_proposals_trains_roi_kd(frcnn_teacher):
    """No RPN in the student: the stock given-proposals path runs, RoI KD on its RoIs."""
    from mmengine.structures import InstanceData
    f_path, f_ckpt, _ = frcnn_teacher
    student = faster_rcnn_model(width=8)
    student.pop('rpn_head')
    model = _distiller(student, f_path, f_ckpt, teacher_temperature=1.0,
                       distill_losses=dict(loss_kd=dict(type='KDLoss', inputs='roi_cls')))
    model.train()
    data = _batch(model)
    for s in data['data_samples']:
        s.proposals = InstanceData(bboxes=torch.tensor([[0., 0., 30., 30.], [10., 10., 60., 50.],
                                                        [5., 20., 40., 62.]]),
                                   scores=torch.ones(3))
    losses = model.loss(data['inputs'], data['data_samples'])
    assert 'loss_rpn_cls' not in losses and torch.isfinite(losses['loss_kd'])
    with pytest.raises(ValueError, match=r"inputs must be one of \['roi_cls', 'neck'\]"):
        _distiller(student, f_path, f_ckpt, teacher_temperature=1.0, distill_losses=dict(
            loss_r=dict(type='BinaryKDLoss', inputs='rpn_cls')))
