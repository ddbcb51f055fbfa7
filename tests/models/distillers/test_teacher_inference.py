"""The teacher's inference settings: folding and channels-last change nothing, bf16 logits reach
the losses in fp32, the calibration fingerprint follows the settings, unsupported pairs are
refused at build, and the checkpoint stays a plain student checkpoint."""
import copy
import logging
from types import SimpleNamespace

import pytest
import torch
import torch.nn as nn
from mmengine.config import ConfigDict
from mmengine.logging import MessageHub

from mmdet.registry import MODELS

import mmkdcal  # noqa: F401
from mmkdcal.engine.hooks import TeacherCalibrationHook
from mmkdcal.models.distillers import distiller_type
from mmkdcal.models.distillers import teacher_inference as ti

from _families import FAMILIES, TWO_STAGE, WITH_MASK, input_size, tiny_model
from _helpers import batch as _batch
from _helpers import distiller as _distiller
from _helpers import gfl_model, save_teacher

torch.set_num_threads(1)

KD = dict(loss_kd=dict(type='BinaryKDLoss', inputs='cls', beta=0.0, loss_weight=1.0))
FP32 = dict(fuse_conv_bn=False, channels_last=False, precision='fp32')
needs_bf16 = pytest.mark.skipif(not ti._cpu_has_native_bf16(), reason='CPU without native bf16')


@pytest.fixture(scope='module')
def teacher(tmp_path_factory):
    """A GFL teacher whose BatchNorms hold planted, non-trivial statistics and affine terms."""
    cfg_path, ckpt, model = save_teacher(gfl_model(width=16, stacked_convs=2),
                                         tmp_path_factory.mktemp('t'))
    g = torch.Generator().manual_seed(3)
    state = model.state_dict()
    for name, m in model.named_modules():
        if isinstance(m, nn.BatchNorm2d):
            c = m.num_features
            state[f'{name}.running_mean'] = torch.randn(c, generator=g) * 0.5
            state[f'{name}.running_var'] = torch.rand(c, generator=g) * 2 + 0.2
            state[f'{name}.weight'] = torch.rand(c, generator=g) + 0.5
            state[f'{name}.bias'] = torch.randn(c, generator=g) * 0.3
    torch.save({'state_dict': state, 'meta': {}}, ckpt)
    return cfg_path, ckpt


def _build(teacher, **settings):
    cfg_path, ckpt = teacher
    return _distiller(gfl_model(width=8), cfg_path, ckpt, teacher_temperature=2.0,
                      distill_losses=KD, teacher_inference=settings)


def _count_bn(module):
    return sum(isinstance(m, nn.BatchNorm2d) for m in module.modules())


@pytest.mark.parametrize('settings', [dict(fuse_conv_bn=True), dict(channels_last=True),
                                      dict(fuse_conv_bn=True, channels_last=True)])
def test_folded_and_channels_last_teacher_equals_the_stock_one(teacher, settings):
    ref = _build(teacher, **FP32)
    fast = _build(teacher, **{**FP32, **settings})
    assert _count_bn(ref.teacher) > 0  # the reference really holds BatchNorms
    n_bn = 0 if settings.get('fuse_conv_bn') else _count_bn(ref.teacher)
    assert _count_bn(fast.teacher) == n_bn
    if settings.get('channels_last'):
        conv = fast.teacher.backbone.conv1.weight
        assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    assert all(not p.requires_grad for p in fast.teacher.parameters())  # folded bias frozen too
    x = _batch(ref)['inputs']
    feats_r, outs_r = ref.teacher_forward(x)
    feats_f, outs_f = fast.teacher_forward(x)
    for a, b in zip(list(feats_r) + outs_r[0] + outs_r[1], list(feats_f) + outs_f[0] + outs_f[1]):
        assert b.dtype == torch.float32 and b.is_contiguous()
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-4)


@needs_bf16
def test_bf16_teacher_logits_reach_the_losses_as_fp32(teacher, monkeypatch):
    ref = _build(teacher, **FP32)
    fast = _build(teacher, fuse_conv_bn=True, channels_last=True, precision='bf16')
    data = _batch(fast)
    seen = {}
    kd = fast.distill_losses['loss_kd']
    orig = type(kd).forward

    def spy(self, student, teacher, *args, **kwargs):
        seen['teacher'] = teacher
        return orig(self, student, teacher, *args, **kwargs)

    monkeypatch.setattr(type(kd), 'forward', spy)
    fast.train()
    fast.loss(data['inputs'], data['data_samples'])
    t_fast = seen['teacher']
    assert t_fast.dtype == torch.float32
    # what the loss got: the bf16 teacher's logits divided by T=2, not the fp32 teacher's
    _, outs_r = ref.teacher_forward(data['inputs'])
    t_ref = torch.cat([o.permute(0, 2, 3, 1).reshape(-1, 3) for o in outs_r[0]]) / 2.0
    assert not torch.equal(t_fast, t_ref)
    assert (t_fast - t_ref).abs().max() < 0.1
    # the calibration pass calls the teacher's parts itself; it gets the same bf16 outputs
    with torch.no_grad():
        direct = fast.teacher.bbox_head(fast.teacher.extract_feat(data['inputs']))[0]
    flat = torch.cat([o.permute(0, 2, 3, 1).reshape(-1, 3) for o in direct]) / 2.0
    assert all(o.dtype == torch.float32 for o in direct)
    torch.testing.assert_close(flat, t_fast, rtol=0, atol=0)


def _runner(model, resume=True):
    return SimpleNamespace(model=model, _resume=resume, logger=logging.getLogger('test'))


def test_stored_temperature_is_reused_only_for_the_same_settings(teacher):
    a = _build(teacher, **FP32)
    a.set_teacher_temperature(1.7, source='fitted')
    ckpt = {}
    TeacherCalibrationHook().before_save_checkpoint(_runner(a), ckpt)
    same = _build(teacher, **FP32)
    same.temperature_source = None
    TeacherCalibrationHook().after_load_checkpoint(_runner(same), ckpt)
    assert same.temperature_source == 'checkpoint'
    assert same.teacher_temperature.item() == pytest.approx(1.7)
    other = _build(teacher, **{**FP32, 'channels_last': True})  # same weights, other settings
    other.temperature_source = None
    TeacherCalibrationHook().after_load_checkpoint(_runner(other), ckpt)
    assert not other.has_teacher_temperature  # the hook fits it again before training


def test_unsupported_device_precision_pairs_are_refused_at_build(teacher):
    with pytest.raises(ValueError, match="precision='fp16' needs a CUDA device"):
        ti.check_precision('fp16', cuda=False)
    with pytest.raises(ValueError, match='no native bf16'):
        ti.check_precision('bf16', cuda=False, cpu_bf16=False)
    ti.check_precision('bf16', cuda=False, cpu_bf16=True)  # a CPU with AVX512-BF16/AMX runs it
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="teacher_inference.precision='fp16'"):
            _build(teacher, precision='fp16')
        cfg_path, ckpt = teacher
        with pytest.raises(ValueError, match='needs a CUDA device'):  # the retired alias
            _distiller(gfl_model(width=8), cfg_path, ckpt, distill_losses=KD, teacher_fp16=True)
    with pytest.raises(ValueError, match=r"unknown keys \['fp16'\]"):
        _build(teacher, fp16=True)
    with pytest.raises(TypeError, match='channels_last must be True or False'):
        _build(teacher, channels_last='yes')
    with pytest.raises(ValueError, match="precision must be one of"):
        _build(teacher, precision='int8')


def test_retired_teacher_fp16_false_warns_and_runs_fp32(teacher, monkeypatch):
    cfg_path, ckpt = teacher
    logged = []
    monkeypatch.setattr(ti, 'print_log', lambda msg, **kw: logged.append(msg))
    model = _distiller(gfl_model(width=8), cfg_path, ckpt, distill_losses=KD, teacher_fp16=False)
    assert model.teacher_inference['precision'] == 'fp32'
    assert logged == ["model.teacher_fp16 is deprecated: use model.teacher_inference=dict("
                      "precision='fp32')."]
    with pytest.raises(ValueError, match='both set'):
        _distiller(gfl_model(width=8), cfg_path, ckpt, distill_losses=KD, teacher_fp16=False,
                   teacher_inference=dict(precision='fp32'))


def test_failed_compile_falls_back_to_eager_with_the_reason(teacher, monkeypatch):
    def broken(fn, **kwargs):
        def call(*args, **kw):
            raise RuntimeError('no C++ compiler')
        return call

    monkeypatch.setattr(torch, 'compile', broken)
    ref = _build(teacher)
    fast = _build(teacher, compile=True)
    x = _batch(ref)['inputs']
    logged = []
    monkeypatch.setattr(ti, 'print_log', lambda msg, **kw: logged.append(msg))
    _, outs_f = fast.teacher_forward(x)
    _, outs_r = ref.teacher_forward(x)
    for a, b in zip(outs_r[0], outs_f[0]):
        torch.testing.assert_close(b, a, rtol=0, atol=0)
    assert len(logged) == 3 and all('no C++ compiler' in m and 'runs eagerly' in m for m in logged)
    fast.teacher_forward(x)
    assert len(logged) == 3  # tried once per child (backbone, neck, head), then eager


def test_checkpoint_of_a_fast_teacher_run_loads_strictly_into_the_stock_student(teacher):
    settings = dict(fuse_conv_bn=True, channels_last=True)
    if ti._cpu_has_native_bf16():
        settings['precision'] = 'bf16'
    model = _build(teacher, **settings)
    student = MODELS.build(gfl_model(width=8))
    student.load_state_dict(model.state_dict(), strict=True)
    for k, v in student.state_dict().items():
        assert torch.equal(v, model.state_dict()[k])


class _PreActNet(nn.Module):
    """conv -> pre-activation block (BN before its conv) -> final BN, equal widths: registration
    order puts BNs after convs that do not feed them."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.block = nn.Sequential(nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1),
                                   nn.BatchNorm2d(8))
        self.bn = nn.BatchNorm2d(8)

    def forward(self, x):
        return self.bn(self.block(self.conv1(x)).relu())


def test_fold_only_folds_a_batchnorm_its_conv_feeds():
    from mmcv.cnn import fuse_conv_bn
    torch.manual_seed(0)
    net = _PreActNet()
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-1, 1)
    net.eval()
    x = torch.randn(2, 3, 16, 16)
    ref = net(x)
    ours = copy.deepcopy(net)
    assert ti.fold_batchnorm(ours) == 1  # block.2 -> block.3 only
    assert isinstance(ours.block[3], nn.Identity) and isinstance(ours.bn, nn.BatchNorm2d)
    torch.testing.assert_close(ours(x), ref, rtol=1e-4, atol=1e-5)
    # mmcv's fold pairs the final BN with the first conv (the last conv it saw): wrong here
    mmcv_folded = fuse_conv_bn(copy.deepcopy(net))
    assert (mmcv_folded(x) - ref).abs().max() > 1e-2


@pytest.mark.parametrize('family', sorted(FAMILIES))
def test_every_family_distils_the_same_from_a_fast_teacher(family, tmp_path, monkeypatch):
    """Per family: the KD losses of one step from the folded, channels-last teacher equal
    those from the stock one (fp32 rounding), and from a bf16 one they stay close and finite.
    Heads (and NAS-FCOS's neck) with mmcv's deformable convolutions (contiguous inputs, no CPU
    bf16 kernel) say so and run in fp32, contiguous; no other part falls back."""
    logged = []
    monkeypatch.setattr(ti, 'print_log', lambda msg, **kw: logged.append(msg))
    MessageHub.get_current_instance().update_info('epoch', 0)  # TOOD reads it (a Runner sets it)
    MessageHub.get_current_instance().update_info('iter', 0)  # and BoxInst this one
    cfg = tiny_model(family)
    t_path, t_ckpt, teacher = save_teacher(cfg, tmp_path, seed=1)
    losses = (dict(loss_kd_roi=dict(type='KDLoss', inputs='roi_cls', tau=2.0),
                   loss_kd_neck=dict(type='PKDLoss', inputs='neck')) if family in TWO_STAGE
              else dict(loss_kd_cls=dict(type='BinaryKDLoss', inputs='cls', beta=1.0),
                        loss_kd_neck=dict(type='PKDLoss', inputs='neck')))
    variants = {'stock': FP32, 'fast': dict(fuse_conv_bn=True, channels_last=True)}
    if ti._cpu_has_native_bf16():
        variants['bf16'] = dict(fuse_conv_bn=True, channels_last=True, precision='bf16')
    out = {}
    for name, settings in variants.items():
        model_cfg = dict(tiny_model(family), type=distiller_type(cfg), teacher_config=t_path,
                         teacher_ckpt=t_ckpt, teacher_temperature=1.5, distill_losses=losses,
                         teacher_inference=settings)
        model = MODELS.build(ConfigDict(model_cfg))
        model.load_state_dict(teacher.state_dict(), strict=True)  # same student weights
        model.train()
        data = _batch(model, size=input_size(family), masks=family in WITH_MASK)
        torch.manual_seed(0)  # the RoI sampler
        out[name] = {k: v for k, v in model.loss(data['inputs'], data['data_samples']).items()
                     if k in losses}
    fell_back = [m for m in logged if 'runs in fp32, contiguous' in m]
    head = ('bbox_head', )  # where each family's deformable convs are
    deformable = dict(ddod=head, tood=head, vfnet=head, reppoints=head,
                      nas_fcos=('neck', 'bbox_head'))
    if family in deformable and 'bf16' in out:
        assert fell_back and all(any(f'teacher {part} cannot run' in m
                                     for part in deformable[family]) for m in fell_back)
    elif family not in deformable:
        assert not fell_back, fell_back
    for key, ref in out['stock'].items():
        assert torch.isfinite(ref) and ref.dtype == torch.float32
        torch.testing.assert_close(out['fast'][key], ref, rtol=1e-4, atol=1e-5)
        if 'bf16' in out:
            got = out['bf16'][key]
            assert got.dtype == torch.float32 and torch.isfinite(got)
            assert abs(got.item() - ref.item()) <= 0.05 * abs(ref.item()) + 1e-3, (key, got, ref)


def test_a_conv_shared_across_levels_is_not_folded():
    """RTMDet's head shares each conv across levels, each level with its own BatchNorm: folding
    one level's BatchNorm into the shared conv would change every other level."""
    head = MODELS.build(ConfigDict(
        type='RTMDetSepBNHead', num_classes=3, in_channels=8, feat_channels=8,
        stacked_convs=2, share_conv=True, norm_cfg=dict(type='BN'),
        anchor_generator=dict(type='MlvlPointGenerator', offset=0, strides=[8, 16, 32]),
        bbox_coder=dict(type='DistancePointBBoxCoder')))
    assert head.cls_convs[1][0].conv is head.cls_convs[0][0].conv  # premise: shared
    torch.manual_seed(0)
    for m in head.modules():
        if isinstance(m, nn.BatchNorm2d):  # a different affine map per level
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
    head.eval()
    feats = tuple(torch.randn(1, 8, s, s) for s in (8, 4, 2))
    with torch.no_grad():
        want = head(feats)
        folded = copy.deepcopy(head)
        n = ti.fold_batchnorm(folded)
        got = folded(feats)
    assert n == 0  # every conv with a BatchNorm after it is shared here
    for w, g in zip(want, got):
        for a, b in zip(w, g):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
