"""The COCO distillation configs (configs/{gfl,retinanet,atss,fcos,rtmdet}, the two-stage families
configs/{faster_rcnn,mask_rcnn,cascade_rcnn} and the DETR family:
configs/{dino,deformable_detr,conditional_detr}) and their READMEs.

Nothing is downloaded and no backbone is built: the configs are parsed, the teacher config is
resolved, and only the heads are built to check that student and teacher outputs line up. The
teacher checkpoint URLs and the published box APs in the READMEs are checked against
MMDetection's own ``metafile.yml`` files.
"""
import copy
import functools
import glob
import os
import os.path as osp
import re
from typing import Dict, List, Optional, Tuple

import pytest
import torch
import yaml
from mmengine.config import Config, ConfigDict

import mmdet
from mmdet.registry import HOOKS, MODELS

import mmkdcal  # noqa: F401  (registers the distillers, losses and hooks)
from mmkdcal.models.distillers import (DistillSingleStageDetector, DistillTwoStageDetector,
                                       check_dense_head_layout, load_teacher_config)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG_ROOT = osp.join(ROOT, 'configs')
MMDET_CONFIGS = osp.join(osp.dirname(mmdet.__file__), '.mim', 'configs')
#: The COCO config folders: every folder of configs/ with a '## Results' table in its README.
FAMILIES = tuple(sorted(
    d for d in os.listdir(CONFIG_ROOT)
    if osp.isfile(osp.join(CONFIG_ROOT, d, 'README.md'))
    and '## Results' in open(osp.join(CONFIG_ROOT, d, 'README.md')).read()
    and any(f.endswith('_coco.py') for f in os.listdir(osp.join(CONFIG_ROOT, d)))))
#: The distillation method's '-'-separated tokens (without 'cal') -> the loss each configures;
#: 'kd' is binary (sigmoid) KD on dense heads and softmax KD on RoI heads.
#: DETR-family distillers ('detr' kind): 'kd' aligns the decoder queries by Hungarian matching,
#: 'sqkd' by shared queries; both distil class logits (sigmoid heads: binary KD) and boxes.
METHOD_TOKEN_LOSSES = {
    ('single', 'kd'): 'BinaryKDLoss', ('two', 'kd'): 'KDLoss', ('two', 'dkd'): 'DKDLoss',
    ('single', 'pkd'): 'PKDLoss', ('single', 'ld'): 'LDLoss', ('single', 'cwd'): 'CWDLoss',
    ('detr', 'kd'): ('BinaryKDLoss', 'BoxKDLoss'), ('detr', 'sqkd'): ('BinaryKDLoss', 'BoxKDLoss'),
    ('two', 'mask'): 'BinaryKDLoss',
    # CrossKD: binary KD on the crossed class logits, and LD on the crossed box distributions
    # (GFL) or L1 on the crossed box deltas (other heads).
    ('single', 'crosskd'): ('BinaryKDLoss', 'LDLoss|BoxKDLoss')}
#: Inputs that only some method tokens read -> those tokens.
INPUT_TOKENS = {'crosskd_cls': {'crosskd'}, 'crosskd_reg': {'crosskd'}, 'neck': {'cwd', 'pkd'},
                'roi_mask': {'mask'}}
#: RTMDet size tokens -> (deepen_factor, widen_factor) of MMDetection's configs.
RTMDET_SIZES = {'tiny': (0.167, 0.375), 's': (0.33, 0.5), 'm': (0.67, 0.75), 'l': (1, 1),
                'x': (1.33, 1.25)}
DETR_ALIGNMENT_TOKENS = {'kd': 'hungarian', 'sqkd': 'shared_queries'}
DISTILLER_KEYS = ('type', 'teacher_config', 'teacher_ckpt', 'teacher_temperature',
                  'teacher_inference', 'distill_losses', 'query_alignment', 'layer_weights',
                  'teacher_layers', 'match_costs', 'crosskd', 'roi_stages')
NOT_MEASURED = 'not yet measured'
NOT_PUBLISHED = 'not published'


# ---------------------------------------------------------------------------------- helpers
def _found_files() -> List[str]:
    found = []
    for family in FAMILIES:
        folder = osp.join(CONFIG_ROOT, family)
        for dirpath, _, files in os.walk(folder):
            found += [osp.relpath(osp.join(dirpath, f), CONFIG_ROOT) for f in files
                      if f.endswith('.py')]
    return sorted(found)


def _is_distiller(rel: str) -> bool:
    return 'teacher_config' in Config.fromfile(osp.join(CONFIG_ROOT, rel)).model


FOUND = _found_files()
DISTILL_FILES = [f for f in FOUND if _is_distiller(f)]
BASELINE_FILES = [f for f in FOUND if f not in DISTILL_FILES]


def _base_of(rel: str) -> str:
    """The ``_base_`` a repo config inherits (repo-relative, or an ``mmdet::`` path)."""
    text = open(osp.join(CONFIG_ROOT, rel)).read()
    m = re.search(r"^_base_\s*=\s*\[?\s*'([^']+)'", text, re.M)
    assert m, f'{rel} has no _base_'
    base = m.group(1)
    if base.startswith('mmdet::'):
        return base
    return osp.normpath(osp.join(osp.dirname(rel), base))


def _student_base(rel: str) -> str:
    """The plain student config a distillation config distils: where its ``_base_`` chain leaves
    the distillation configs, or the repo's baseline config whose model it is."""
    end = rel
    while end in DISTILL_FILES:
        end = _base_of(end)
    student = _strip(_load(rel).model)
    for candidate in [end] + [b for b in BASELINE_FILES if b.split('/')[0] == rel.split('/')[0]]:
        if _strip(_load(candidate).model) == student:
            return candidate
    return end


@functools.lru_cache(maxsize=None)
def _load(path: str) -> Config:
    """Load a repo config (relative to configs/) or an ``mmdet::`` one."""
    if path.startswith('mmdet::'):
        return Config.fromfile(osp.join(MMDET_CONFIGS, path[len('mmdet::'):]))
    return Config.fromfile(osp.join(CONFIG_ROOT, path))


@functools.lru_cache(maxsize=None)
def _teacher_model(teacher_config: str) -> ConfigDict:
    return load_teacher_config(teacher_config)


def _teacher(path: str) -> ConfigDict:
    """The teacher's model config of a distillation config, as the distiller resolves it."""
    return _teacher_model(_load(path).model.teacher_config)


class _Name:
    """``<method>_<student>_<teacher>_<schedule>_<dataset>.py`` split into its parts."""

    def __init__(self, rel: str):
        self.family, fname = rel.split('/')
        stem = fname[:-len('.py')]
        parts = stem.split('_')
        assert len(parts) == 6, f'{fname}: expected <method>_<student>_<teacher>_<schedule>_' \
                                '<dataset> with a two-part student (detector_backbone)'
        self.method = parts[0]
        self.student = '_'.join(parts[1:3])
        self.teacher_backbone = parts[3]
        self.schedule, self.dataset = parts[4], parts[5]
        tokens = self.method.split('-')
        self.calibrated = 'cal' in tokens
        self.base_method = '-'.join(t for t in tokens if t != 'cal')
        self.twin = rel.replace(f'/{self.method}_', f'/{self.base_method}_') \
            if self.calibrated else None
        model = _load(rel).model
        self.kind = 'two' if 'roi_head' in model else 'detr' if 'decoder' in model else 'single'

    @property
    def student_size(self) -> str:
        return self.student.split('_')[1]


def _check_backbone_token(token: str, model: ConfigDict, rel: str) -> None:
    """A file name's backbone token names the model's backbone: 'r50' a ResNet-50 ('r50-caffe'
    a caffe-style one), an RTMDet size ('s', 'tiny') its CSPNeXt deepen/widen factors."""
    backbone = model.backbone
    m = re.fullmatch(r'r(\d+)(-caffe)?', token)
    if m:
        assert backbone.type == 'ResNet' and backbone.depth == int(m.group(1)), (token, rel)
        assert (m.group(2) is not None) == (backbone.get('style') == 'caffe'), (token, rel)
    else:
        assert token in RTMDET_SIZES, (token, rel)
        assert backbone.type == 'CSPNeXt', (token, rel)
        assert (backbone.deepen_factor, backbone.widen_factor) == RTMDET_SIZES[token], \
            (token, rel)


def _schedule_epochs(token: str) -> int:
    """The epochs a schedule token names: '1x' = 12 (MMDetection's convention), '50e' = 50."""
    m = re.fullmatch(r'(\d+)x', token)
    if m:
        return 12 * int(m.group(1))
    m = re.fullmatch(r'(\d+)e', token)
    assert m, f'schedule token {token!r} is neither <n>x nor <n>e'
    return int(m.group(1))


@functools.lru_cache(maxsize=None)
def _metafile(family: str) -> Dict[str, dict]:
    """MMDetection's metafile of a family: config stem -> dict(weights, box_ap)."""
    with open(osp.join(MMDET_CONFIGS, family, 'metafile.yml')) as f:
        data = yaml.safe_load(f)
    out = {}
    for m in data['Models']:
        ap = [r['Metrics']['box AP'] for r in m.get('Results', [])
              if 'box AP' in r.get('Metrics', {})]
        stem = osp.splitext(osp.basename(m['Config']))[0]
        out[stem] = dict(weights=m.get('Weights'), box_ap=float(ap[0]) if ap else None)
    return out


def _published(config_path: str) -> Optional[dict]:
    """Metafile entry of an ``mmdet::<family>/<stem>.py`` config (None for repo configs)."""
    if not config_path.startswith('mmdet::'):
        return None
    family, fname = config_path[len('mmdet::'):].split('/')
    return _metafile(family).get(osp.splitext(fname)[0])


def _heads(rel: str) -> Tuple[torch.nn.Module, torch.nn.Module]:
    """Build the student's and the teacher's dense heads as the detectors would."""
    s_model, t_model = _load(rel).model, _teacher(rel)
    heads = []
    for m in (s_model, t_model):
        cfg = m.bbox_head.copy()
        cfg.update(train_cfg=m.get('train_cfg'), test_cfg=m.get('test_cfg'))
        heads.append(MODELS.build(cfg))
    return heads[0], heads[1]


def _roi_heads(rel: str) -> Tuple[List[torch.nn.Module], List[torch.nn.Module]]:
    """The student's and the teacher's RoI box heads, one per (cascade) stage."""
    out = []
    for m in (_load(rel).model, _teacher(rel)):
        cfgs = m.roi_head.bbox_head
        cfgs = cfgs if isinstance(cfgs, (list, tuple)) else [cfgs]
        out.append([MODELS.build(c.copy()) for c in cfgs])
    return out[0], out[1]


def _unscoped(obj):
    """A plain copy of a config (part) without the ``_scope_='mmdet'`` entries that inheriting
    an ``mmdet::`` config adds to every dict (the default scope is 'mmdet' anyway)."""
    if isinstance(obj, dict):
        return {k: _unscoped(v) for k, v in obj.items() if k != '_scope_'}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_unscoped(v) for v in obj)
    return obj


def _strip(model: ConfigDict, keys=DISTILLER_KEYS) -> dict:
    """The model dict without ``keys`` (and without ``_scope_``)."""
    return {k: v for k, v in _unscoped(model.to_dict()).items() if k not in keys}


def _rest(cfg: Config, drop=('model', )) -> dict:
    """Every top-level setting except ``drop`` (and without ``_scope_``).

    mmkdcal's ``AtomicCheckpointHook`` (a ``CheckpointHook`` with atomic saves, which every
    config of the project selects) reads as the stock ``CheckpointHook``.
    """
    rest = {k: v for k, v in _unscoped(cfg.to_dict()).items() if k not in drop}
    hook = rest.get('default_hooks', {}).get('checkpoint', {})
    if hook.get('type') == 'AtomicCheckpointHook':
        hook['type'] = 'CheckpointHook'
    return rest


def _calibration_hooks(cfg: Config) -> List[dict]:
    return [h for h in cfg.get('custom_hooks', []) if h['type'] == 'TeacherCalibrationHook']


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


# ---------------------------------------------------------------------------------- the set
def test_the_set_is_found_and_named():
    assert {'gfl', 'retinanet', 'atss', 'fcos', 'faster_rcnn', 'rtmdet', 'mask_rcnn',
            'cascade_rcnn'} <= set(FAMILIES)
    assert len(DISTILL_FILES) >= 20
    for rel in DISTILL_FILES:
        name = _Name(rel)
        assert name.base_method, rel
        if name.calibrated:  # every X-cal has its X
            assert name.twin in DISTILL_FILES, f'{rel} has no uncalibrated twin {name.twin}'


# ---------------------------------------------------------------------------------- per config
@pytest.mark.parametrize('rel', DISTILL_FILES)
def test_name_and_distiller_type(rel):
    name = _Name(rel)
    cfg = _load(rel)
    assert name.dataset == 'coco'
    assert _schedule_epochs(name.schedule) == cfg.train_cfg.max_epochs
    assert cfg.custom_imports.imports == ['mmkdcal']
    assert cfg.custom_imports.allow_failed_imports is False
    # The distiller is the student's own detector class, Distill<Student> (its behaviour kept).
    student_cls = MODELS.get(_load(_student_base(rel)).model.type)
    assert cfg.model.type == f'Distill{student_cls.__name__}'
    assert MODELS.get(cfg.model.type).STUDENT_CLASS is student_cls
    if name.kind == 'detr':
        assert cfg.model.query_alignment == DETR_ALIGNMENT_TOKENS[name.base_method]
    else:
        assert issubclass(MODELS.get(cfg.model.type), DistillTwoStageDetector
                          if name.kind == 'two' else DistillSingleStageDetector)
    # The backbones named in the file name are those of the configs (fcos_r50-caffe names a
    # caffe-style student; the teacher token must say so too).
    _check_backbone_token(name.student_size, cfg.model, rel)
    _check_backbone_token(name.teacher_backbone, _teacher(rel), rel)
    assert _teacher(rel).type == _load(_student_base(rel)).model.type
    assert cfg.model.teacher_inference == dict(fuse_conv_bn=True, channels_last=False,
                                               precision='fp32')


@pytest.mark.parametrize('rel', DISTILL_FILES)
def test_calibration_matches_name(rel):
    """X-cal fits T with a mode that applies to its teacher; X distils the raw teacher."""
    from mmkdcal.engine import CALIBRATION_MODES
    name = _Name(rel)
    cfg = _load(rel)
    hooks = _calibration_hooks(cfg)
    if name.calibrated:
        assert cfg.model.teacher_temperature is None
        assert len(hooks) == 1
        assert hooks[0]['objective'] == 'nll'
        hook = HOOKS.build(dict(hooks[0]))  # the arguments are valid for the hook
        t_model = _teacher(rel)
        if 'bbox_head' in t_model:  # the mode applies to the teacher's head (built alone)
            head, _ = _heads(rel)
            stub = type(t_model.type, (), dict(bbox_head=head, predict=None))()
        else:
            from types import SimpleNamespace
            cascade = isinstance(t_model.train_cfg.rcnn, (list, tuple))
            stub = SimpleNamespace(with_rpn=True, predict=None, train_cfg=t_model.train_cfg,
                                   roi_head=SimpleNamespace(bbox_assigner=[] if cascade
                                                            else object()))
        assert CALIBRATION_MODES[hook.fit_on].supports(stub) is None, (rel, hook.fit_on)
    else:
        assert cfg.model.teacher_temperature == 1.0
        # With a temperature in the config the hook fits nothing; a config may carry it (RTMDet's
        # do, so that their calibrated twins only set the temperature to None), and a run with
        # feature adapters must (it keeps their state with the run).
        adapters = any(loss.get('student_channels') != loss.get('teacher_channels')
                       for loss in cfg.model.distill_losses.values())
        assert len(hooks) == 1 if adapters else len(hooks) <= 1
        for hook in hooks:
            HOOKS.build(dict(hook))


@pytest.mark.parametrize('rel', DISTILL_FILES)
def test_the_stock_student_hooks_are_kept(rel):
    """Every custom hook of the stock student config (RTMDet's EMA and pipeline switch) is in
    the distillation config, in the same order and with the same settings."""
    ours = [h for h in _unscoped(_load(rel).to_dict()).get('custom_hooks', [])
            if h['type'] not in ('TeacherCalibrationHook', 'DistillStopHook')]
    stock = _unscoped(_load(_student_base(rel)).to_dict()).get('custom_hooks', [])
    assert ours == stock


@pytest.mark.parametrize('rel', [f for f in DISTILL_FILES if _Name(f).calibrated])
def test_calibrated_config_differs_from_its_twin_only_in_calibration(rel):
    """X-cal = X with teacher_temperature None and the calibration hook, nothing else."""
    twin = _Name(rel).twin
    assert twin in DISTILL_FILES, f'{rel} has no uncalibrated twin {twin}'
    cal, base = _load(rel), _load(twin)
    assert _strip(cal.model, ('teacher_temperature', )) == \
        _strip(base.model, ('teacher_temperature', ))
    cal_rest, base_rest = _rest(cal), _rest(base)
    cal_hooks, base_hooks = cal_rest.pop('custom_hooks'), base_rest.pop('custom_hooks', [])
    assert [h for h in cal_hooks if h['type'] != 'TeacherCalibrationHook'] == \
        [h for h in base_hooks if h['type'] != 'TeacherCalibrationHook']
    assert cal_rest == base_rest


@pytest.mark.parametrize('rel', DISTILL_FILES)
def test_only_distillation_changes_the_student(rel):
    """The student model and every non-model setting are the stock student config's."""
    cfg = _load(rel)
    stock = _load(_student_base(rel))
    assert _strip(cfg.model) == _strip(stock.model)
    ours = _rest(cfg, drop=('model', 'custom_imports', 'custom_hooks', 'teacher_ckpt',
                            'val_evaluator', 'test_evaluator'))
    # (the stock student's own hooks: test_the_stock_student_hooks_are_kept)
    assert ours == _rest(stock, drop=('model', 'custom_imports', 'custom_hooks',
                                      'val_evaluator', 'test_evaluator'))
    # validation adds the student's detection calibration error next to the stock CocoMetric
    ours_eval, stock_eval = _unscoped(cfg.to_dict()), _unscoped(stock.to_dict())
    for key in ('val_evaluator', 'test_evaluator'):
        assert ours_eval[key][0] == stock_eval[key]
        assert ours_eval[key][1]['type'] == 'DetectionCalibrationMetric'


def test_r18_student_is_r50_with_resnet18():
    r18 = _load('faster_rcnn/faster-rcnn_r18_fpn_1x_coco.py')
    r50 = _load('mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py')
    assert r18.model.type == 'FasterRCNN'
    assert r18.model.backbone.depth == 18
    assert r18.model.backbone.init_cfg == dict(type='Pretrained',
                                               checkpoint='torchvision://resnet18')
    assert r18.model.neck.in_channels == [64, 128, 256, 512]
    a, b = _strip(r18.model, ()), _strip(r50.model, ())
    for d in (a, b):
        d['backbone'] = {k: v for k, v in d['backbone'].items()
                         if k not in ('depth', 'init_cfg')}
        d['neck'] = {k: v for k, v in d['neck'].items() if k != 'in_channels'}
    assert a == b
    assert _rest(r18, drop=('model', 'custom_imports')) == _rest(r50)


@pytest.mark.parametrize('rel', [f for f in BASELINE_FILES if '_r18_' in f])
def test_r18_baselines_are_their_stock_r50_config_with_resnet18(rel):
    """Every R-18 student baseline is the stock R-50 config it inherits, with a ResNet-18
    (torchvision weights) and the neck reading the ResNet-18 stage widths (R-50's / 4)."""
    base = _base_of(rel)
    assert base.startswith('mmdet::') and '_r50_' in base, base
    r18, r50 = _load(rel), _load(base)
    assert r18.model.backbone.depth == 18
    assert r18.model.backbone.init_cfg == dict(type='Pretrained',
                                               checkpoint='torchvision://resnet18')
    assert r18.model.neck.in_channels == [c // 4 for c in r50.model.neck.in_channels]
    a, b = _strip(r18.model, ()), _strip(r50.model, ())
    for d in (a, b):
        d['backbone'] = {k: v for k, v in d['backbone'].items()
                         if k not in ('depth', 'init_cfg')}
        d['neck'] = {k: v for k, v in d['neck'].items() if k != 'in_channels'}
    assert a == b
    assert _rest(r18, drop=('model', 'custom_imports')) == _rest(r50)


@pytest.mark.parametrize('rel', DISTILL_FILES)
def test_distill_losses_valid(rel):
    """Each loss passes the distiller's build-time check, and the losses are the method's."""
    from mmkdcal.models.distillers import check_loss_input
    name = _Name(rel)
    cfg = _load(rel)
    cls = MODELS.get(cfg.model.type)
    if name.kind == 'single':  # with the neck widths, as the built distiller sees them
        specs = cls.input_specs_for(_heads(rel)[0], cfg.model.neck.out_channels,
                                    _teacher(rel).neck.out_channels,
                                    crosskd=cfg.model.get('crosskd') is not None)
    elif name.kind == 'detr':
        specs = cls.input_specs_for(_heads(rel)[0])
    else:
        specs = cls.DISTILL_INPUTS
    specs = {spec.name: spec for spec in specs}
    losses = cfg.model.distill_losses
    assert len(losses) > 0
    types = set()
    for key, loss_cfg in losses.items():
        loss_cfg = dict(loss_cfg)
        inputs = loss_cfg.pop('inputs')
        loss = MODELS.build(loss_cfg)  # the arguments are valid for the loss
        check_loss_input(key, loss, specs.get(inputs), cls.__name__, specs)
        types.add(loss_cfg['type'])
        if loss_cfg['type'] == 'LDLoss':  # LD needs general box distributions on both sides
            s_head, t_head = _heads(rel)
            assert s_head.reg_max == t_head.reg_max == 16
        if inputs == 'neck':  # feature losses: the same levels, equal widths or an adapter
            t_neck = _teacher(rel).neck
            s_width, t_width = cfg.model.neck.out_channels, t_neck.out_channels
            assert len(cfg.model.neck.in_channels) == len(t_neck.in_channels)
            assert cfg.model.neck.get('num_outs') == t_neck.get('num_outs')
            if s_width != t_width:
                assert (loss_cfg['student_channels'], loss_cfg['teacher_channels']) == \
                    (s_width, t_width), rel
        if inputs in INPUT_TOKENS:  # the file name says which method reads this input
            assert INPUT_TOKENS[inputs] & set(name.base_method.split('-')), (rel, key, inputs)
    tokens = name.base_method.split('-')
    want = set()
    for t in tokens:
        loss_types = METHOD_TOKEN_LOSSES[(name.kind, t)]
        loss_types = {loss_types} if isinstance(loss_types, str) else set(loss_types)
        if 'LDLoss|BoxKDLoss' in loss_types:  # CrossKD's box term: LD where the head has one
            loss_types.discard('LDLoss|BoxKDLoss')
            loss_types.add('LDLoss' if _heads(rel)[0].__class__.__name__ == 'GFLHead'
                           else 'BoxKDLoss')
        want |= loss_types
    assert types == want | ({'BinaryKDLoss'} if tokens == ['ld'] else set())


@pytest.mark.parametrize('rel', [f for f in DISTILL_FILES if _Name(f).kind == 'single'])
def test_dense_heads_compatible(rel):
    s_head, t_head = _heads(rel)
    check_dense_head_layout(s_head, t_head)  # raises ValueError on a mismatch
    assert s_head.cls_out_channels == t_head.cls_out_channels == 80
    assert type(s_head) is type(t_head)
    s_out = [tuple(p.shape) for p in s_head.parameters()]
    t_out = [tuple(p.shape) for p in t_head.parameters()]
    if s_head.in_channels == t_head.in_channels:
        assert s_out == t_out  # same head layout: same convs, norms and output widths
    else:  # RTMDet sizes: other widths, the same number of layers
        assert len(s_out) == len(t_out)
    if _load(rel).model.get('crosskd') is not None:  # crossing needs towers of one width
        assert s_head.feat_channels == t_head.feat_channels


def test_dense_head_check_rejects_a_different_anchor_layout():
    """The compatibility check above can fail: a 3-ratio teacher against a 9-anchor student."""
    rel = 'retinanet/kd_retinanet_r50_r101_1x_coco.py'
    s_model, t_model = _load(rel).model, _teacher(rel)
    t_cfg = t_model.bbox_head.copy()
    t_cfg.anchor_generator = dict(t_cfg.anchor_generator, scales_per_octave=1)
    s_head = MODELS.build(s_model.bbox_head.copy())
    t_head = MODELS.build(t_cfg)
    with pytest.raises(ValueError, match='priors per location'):
        check_dense_head_layout(s_head, t_head)


@pytest.mark.parametrize('rel', [f for f in DISTILL_FILES if _Name(f).kind == 'two'])
def test_roi_heads_compatible(rel):
    s_heads, t_heads = _roi_heads(rel)
    assert len(s_heads) == len(t_heads)  # a cascade of the same number of stages
    for s_head, t_head in zip(s_heads, t_heads):
        assert s_head.num_classes == t_head.num_classes == 80
        # (K+1)-way softmax on both sides: what KDLoss / DKDLoss compare.
        assert s_head.fc_cls.out_features == t_head.fc_cls.out_features == 81
        assert not s_head.loss_cls.use_sigmoid and not t_head.loss_cls.use_sigmoid
    s_model, t_model = _load(rel).model, _teacher(rel)
    if 'mask_head' in s_model.roi_head:  # mask KD compares masks of one resolution
        assert 'mask_head' in t_model.roi_head
        for s_cfg, t_cfg in zip(*[m.roi_head.mask_head if isinstance(m.roi_head.mask_head, list)
                                  else [m.roi_head.mask_head] for m in (s_model, t_model)]):
            assert MODELS.build(s_cfg.copy()).conv_logits.out_channels == \
                MODELS.build(t_cfg.copy()).conv_logits.out_channels == 80


@pytest.mark.parametrize('rel', DISTILL_FILES)
def test_data_preprocessors_agree(rel):
    s_pre = _load(rel).model.data_preprocessor
    t_pre = _teacher(rel).data_preprocessor
    for key in ('mean', 'std', 'bgr_to_rgb'):
        assert s_pre[key] == t_pre[key], key
    if _Name(rel).family == 'fcos':  # the caffe-style pair
        assert s_pre.std == [1.0, 1.0, 1.0] and s_pre.bgr_to_rgb is False


@pytest.mark.parametrize('rel', DISTILL_FILES)
def test_teacher_checkpoint_is_the_published_one(rel):
    cfg = _load(rel)
    entry = _published(cfg.model.teacher_config)
    assert entry is not None, f'{cfg.model.teacher_config} is not in MMDetection\'s metafile'
    assert cfg.model.teacher_ckpt == entry['weights']
    assert cfg.model.teacher_ckpt.startswith('https://download.openmmlab.com/')
    # Overridable from the command line (tools/train.py --cfg-options model.teacher_ckpt=...).
    cfg2 = copy.deepcopy(cfg)
    cfg2.merge_from_dict({'model.teacher_ckpt': '/data/teacher.pth'})
    assert cfg2.model.teacher_ckpt == '/data/teacher.pth'


# ---------------------------------------------------------------------------------- READMEs
def _readme_rows(family: str, section: str = '## Results') -> Dict[str, List[str]]:
    """Rows of the README's results table (the section '## Results ...') whose first cell is a
    config file name: name -> cells."""
    rows = {}
    with open(osp.join(CONFIG_ROOT, family, 'README.md')) as f:
        lines = f.read().splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith(section)]
    assert len(starts) == 1, f'configs/{family}/README.md needs one "{section}" section'
    for line in lines[starts[0]:]:
        if line.startswith('## ') and not line.startswith(section):
            break
        cells = [c.strip() for c in line.strip().strip('|').split('|')]
        m = re.fullmatch(r'`([\w.-]+\.py)`', cells[0]) if line.startswith('|') else None
        if m:
            assert m.group(1) not in rows, f'{m.group(1)} appears twice in the results table'
            rows[m.group(1)] = [c.strip('`') for c in cells]
    return rows


def _ap_cell(entry: Optional[dict]) -> str:
    return NOT_PUBLISHED if entry is None or entry['box_ap'] is None \
        else f"{entry['box_ap']:.1f}"


def test_the_hetero_readme_table_matches_the_metafiles():
    """configs/hetero: one row per config, the stock student and the teacher of another family
    with the box APs of MMDetection's metafile.yml."""
    rows = _readme_rows('hetero', '## Benchmark table')
    configs = sorted(glob.glob(osp.join(CONFIG_ROOT, 'hetero', '*.py')))
    assert sorted(rows) == sorted(osp.basename(f) for f in configs)
    for path in configs:
        cfg = Config.fromfile(path)
        base = re.search(r"^_base_ = '([^']+)'", open(path).read(), re.M).group(1)
        cells = rows[osp.basename(path)]
        assert cells[1:5] == [osp.splitext(osp.basename(base))[0], _ap_cell(_published(base)),
                              osp.splitext(osp.basename(cfg.model.teacher_config))[0],
                              _ap_cell(_published(cfg.model.teacher_config))], path
        assert cells[5] == NOT_MEASURED or re.fullmatch(r'\d+\.\d( ± .*)?', cells[5]), cells[5]


@pytest.mark.parametrize('family', FAMILIES)
def test_readme_tables_match_the_metafiles(family):
    """One row per distillation config (and plain student baseline): student / teacher with their
    published box AP (as in MMDetection's metafile.yml), then our generated columns (a result
    or "not yet measured")."""
    rows = _readme_rows(family)
    configs = [f for f in DISTILL_FILES if f.startswith(family + '/')]
    baselines = [f for f in BASELINE_FILES if f.startswith(family + '/')]
    assert sorted(rows) == sorted(osp.basename(f) for f in configs + baselines)
    with open(osp.join(CONFIG_ROOT, family, 'README.md')) as f:
        text = f.read()
    assert 'metafile.yml' in text
    for rel in baselines:  # a plain student: it is its own student, no teacher
        cells = rows[osp.basename(rel)]
        assert cells[1:5] == [osp.splitext(osp.basename(rel))[0], NOT_PUBLISHED, '-', '-']
        assert cells[5] == NOT_MEASURED or re.fullmatch(r'\d+\.\d( ± .*)?', cells[5])
    for rel in configs:
        cfg = _load(rel)
        cells = rows[osp.basename(rel)]
        assert len(cells) == 10, cells
        student_base = _student_base(rel)
        assert cells[1] == osp.splitext(osp.basename(student_base))[0]
        assert cells[2] == _ap_cell(_published(student_base))
        assert cells[3] == osp.splitext(osp.basename(cfg.model.teacher_config))[0]
        assert cells[4] == _ap_cell(_published(cfg.model.teacher_config))
        assert cells[5] == NOT_MEASURED or re.fullmatch(r'\d+\.\d( ± .*)?', cells[5]), cells[5]
        for cmd in (f'python tools/train.py configs/{rel}',
                    f'bash tools/dist_train.sh configs/{rel} 8'):
            assert cmd in text, cmd
