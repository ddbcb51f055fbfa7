"""Every shipped distillation config trains one step at toy size, driven as MMEngine's Runner
drives it, whether or not it carries ``TeacherCalibrationHook``; a config with feature adapters
and no hook saves, resumes and reloads strictly into its stock student config.

The list is derived from the files: every config under ``configs/`` whose model has a
``teacher_config``. Toy size: backbones at their stock width (ResNet's 64-channel base, CSPNeXt
from -tiny up) are made 8x narrower, and the necks' ``in_channels`` follow; the demo's narrow
backbones are kept. Necks' outputs, heads, assigners and distillation losses are as shipped (the
R-CNN samplers draw 64 RoIs instead of 512). Images are 64 px (32 px for image classifiers; a
two-stage DETR gets as many encoder tokens as it has queries). Nothing is downloaded: pretrained
``init_cfg`` entries are dropped and each teacher is its config's random weights, saved once per
teacher config to a temporary checkpoint.

One step as the Runner takes it: the MessageHub holds ``loop_stage='train'`` and ``iter`` (what
``RuntimeInfoHook`` publishes before the first iteration), the optimizer wrapper is built from the
config's ``optim_wrapper`` and ``model.train_step`` runs. A ``-cal`` config's temperature, which
its hook would fit before training (tests/engine), is set to 1.5.
"""
import copy
import glob
import inspect
import math
import os.path as osp
import uuid
from typing import Dict, List

import pytest
import torch
from mmengine.config import Config, ConfigDict
from mmengine.logging import MessageHub
from mmengine.optim import build_optim_wrapper
from mmengine.runner import Runner
from mmengine.structures import BaseDataElement, InstanceData

import mmkdcal  # noqa: F401  (registers the distillers, losses and hooks)
from mmdet.models.detectors import BaseDetector
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmdet.structures.mask import BitmapMasks
from mmkdcal.models.distillers import load_teacher_config
from mmkdcal.models.distillers.distiller_mixin import DISTILL_STATE_KEY
from mmkdcal.utils.checkpoint import load_checkpoint_file

from _helpers import (dump_config, last_checkpoint, probe_first_distill_step, train_config,
                      write_coco)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG_ROOT = osp.join(ROOT, 'configs')
HOOK = 'TeacherCalibrationHook'
SHRINK = 8  # backbone width divisor


def _distill_configs() -> Dict[str, Config]:
    found = {}
    for path in sorted(glob.glob(osp.join(CONFIG_ROOT, '**', '*.py'), recursive=True)):
        rel = osp.relpath(path, CONFIG_ROOT)
        if '_base_' in rel.split(osp.sep):
            continue
        cfg = Config.fromfile(path)
        if 'teacher_config' in cfg.get('model', {}):
            found[rel] = cfg
    return found


#: configs/-relative path -> parsed config, for every distillation config (parsed once).
PARSED = _distill_configs()
CONFIGS = list(PARSED)


def _hooks(rel: str) -> List[str]:
    return [h['type'] for h in PARSED[rel].get('custom_hooks', [])]


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


# ------------------------------------------------------------------------------ toy size
def _walk(obj, fn):
    if isinstance(obj, list):
        return [_walk(v, fn) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_walk(v, fn) for v in obj)
    if not isinstance(obj, dict):
        return obj
    return fn({k: _walk(v, fn) for k, v in obj.items()})


def _no_downloads(d: dict) -> dict:
    init = d.get('init_cfg')
    if isinstance(init, dict) and init.get('type') == 'Pretrained':
        d['init_cfg'] = None
    if d.get('type') == 'SyncBN':  # what SyncBN computes in one process
        d['type'] = 'BN'
    if d.get('type') == 'RandomSampler' and isinstance(d.get('num'), int):
        d['num'] = min(d['num'], 64)
    return d


def toy_model(model: dict) -> dict:
    """``model`` at toy size (see the module docstring); the heads are untouched."""
    model = _walk(copy.deepcopy(model), _no_downloads)
    backbone, neck = model.get('backbone') or {}, model.get('neck')
    factor = 1
    if 'depth' in backbone and backbone.get('base_channels', 64) == 64:  # mmdet's ResNet
        backbone['base_channels'] = 64 // SHRINK
        if 'stem_channels' in backbone:
            backbone['stem_channels'] //= SHRINK
        factor = SHRINK
    elif backbone.get('widen_factor', 0) >= 0.375:  # CSPNeXt / CSPDarknet, -tiny and up
        backbone['widen_factor'] /= SHRINK
        factor = SHRINK
    if factor > 1 and isinstance(neck, dict):
        chans = neck['in_channels']
        neck['in_channels'] = ([c // factor for c in chans] if isinstance(chans, (list, tuple))
                               else chans // factor)
    return model


def _resolve(teacher_config):
    """A repo-relative teacher config path made absolute (scoped paths and dicts as given)."""
    if isinstance(teacher_config, str) and '::' not in teacher_config \
            and not osp.isabs(teacher_config):
        return osp.join(ROOT, teacher_config)
    return teacher_config


@pytest.fixture(scope='module')
def random_teacher(tmp_path_factory):
    """teacher_config -> (toy teacher model dict, checkpoint of its random weights); built once
    per teacher config and shared by the configs that name it."""
    root = tmp_path_factory.mktemp('teachers')
    cache: Dict[str, tuple] = {}

    def get(teacher_config):
        key = repr(teacher_config)
        if key not in cache:
            cfg = toy_model(load_teacher_config(_resolve(teacher_config)).to_dict())
            torch.manual_seed(len(cache))
            teacher = MODELS.build(ConfigDict(copy.deepcopy(cfg)))
            teacher.init_weights()  # parameters some models fill only here (DETR level_embed)
            path = str(root / f'teacher{len(cache)}.pth')
            torch.save({'state_dict': teacher.state_dict(), 'meta': {}}, path)
            cache[key] = (cfg, path)
        return cache[key]

    return get


def build_toy(rel: str, random_teacher) -> tuple:
    """The config at ``configs/<rel>`` and its distiller at toy size with a random teacher."""
    cfg = copy.deepcopy(PARSED[rel])
    model_cfg = cfg.model.to_dict()
    t_cfg, t_ckpt = random_teacher(model_cfg.pop('teacher_config'))
    model_cfg = toy_model(model_cfg)
    model_cfg.update(teacher_config=copy.deepcopy(t_cfg), teacher_ckpt=t_ckpt)
    torch.manual_seed(0)
    return cfg, model_cfg, MODELS.build(ConfigDict(model_cfg))


# ------------------------------------------------------------------------------ toy data
def _image_size(model) -> int:
    if not isinstance(model, BaseDetector):
        return 32
    if not getattr(model, 'as_two_stage', False):
        return 64
    # a two-stage DETR proposes its queries from the encoder's tokens: at least that many
    outs = model.backbone.out_indices
    strides = [2 ** (i + 2) for i in outs]
    while len(strides) < model.num_feature_levels:
        strides.append(2 * strides[-1])
    size = 64
    while sum(math.ceil(size / s) ** 2 for s in strides) < model.num_queries:
        size += 32
    return size


def toy_batch(model, n: int = 2, seed: int = 0) -> dict:
    """A raw batch (as a dataloader yields it): uint8 images, two boxes (classes 0 and 1) per
    detection image with their masks where the model segments, a label per classified image."""
    size = _image_size(model)
    g = torch.Generator().manual_seed(seed)
    inputs = [torch.randint(0, 256, (3, size, size), generator=g, dtype=torch.uint8)
              for _ in range(n)]
    if not isinstance(model, BaseDetector):
        samples = [BaseDataElement(gt_label=torch.tensor(i)) for i in range(n)]
        return dict(inputs=inputs, data_samples=samples)
    with_mask = bool(getattr(getattr(model, 'roi_head', None), 'with_mask', False))
    samples = []
    for _ in range(n):
        s = DetDataSample(metainfo=dict(img_shape=(size, size), ori_shape=(size, size),
                                        scale_factor=(1.0, 1.0)))
        xy = torch.rand(2, 2, generator=g) * size / 2
        boxes = torch.cat([xy, xy + size / 3], 1)
        s.gt_instances = InstanceData(bboxes=boxes, labels=torch.tensor([0, 1]))
        if with_mask:
            masks = torch.zeros(2, size, size, dtype=torch.uint8)
            for j, (x1, y1, x2, y2) in enumerate(boxes.round().int().tolist()):
                masks[j, y1:y2, x1:x2] = 1
            s.gt_instances.masks = BitmapMasks(masks.numpy(), size, size)
        s.ignored_instances = InstanceData(bboxes=torch.zeros(0, 4), labels=torch.zeros(0).long())
        samples.append(s)
    return dict(inputs=inputs, data_samples=samples)


def _runner_hub(it: int = 0) -> MessageHub:
    """A fresh MessageHub holding what RuntimeInfoHook publishes before iteration ``it``."""
    hub = MessageHub.get_instance(f'toy_step_{uuid.uuid4().hex}')
    hub.update_info('loop_stage', 'train')
    hub.update_info('iter', it)
    return hub


# ------------------------------------------------------------------------------ the tests
def test_the_list_is_the_shipped_distillation_configs():
    assert len(CONFIGS) >= 87
    hooks = {rel: HOOK in _hooks(rel) for rel in CONFIGS}
    assert any(hooks.values()) and not all(hooks.values())  # both kinds are covered
    assert {'classification/cifar100/dkd_resnet8x4_resnet32x4_240e_cifar100.py',
            'classification/cifar100/dkd_wrn16-2_wrn40-2_240e_cifar100.py',
            'classification/cifar100/dkd_shufflenetv2_resnet32x4_240e_cifar100.py'} <= set(
                rel for rel, hooked in hooks.items() if not hooked)


@pytest.mark.parametrize('rel', CONFIGS)
def test_config_trains_one_step(rel, random_teacher):
    cfg, _, model = build_toy(rel, random_teacher)
    model.init_weights()  # as Runner.train does first (pretrained init_cfg dropped)
    if not model.has_teacher_temperature:  # a -cal config: its hook fits T before training
        model.set_teacher_temperature(1.5, source='fitted')
    model.train()
    _runner_hub(it=0)
    optim_wrapper = build_optim_wrapper(model, copy.deepcopy(cfg.optim_wrapper))
    trainable = [p for p in model.parameters() if p.requires_grad]
    before = [p.detach().clone() for p in trainable]
    log_vars = model.train_step(toy_batch(model), optim_wrapper)

    assert set(model.distill_losses) <= set(log_vars), sorted(log_vars)
    assert all(math.isfinite(float(v)) for v in log_vars.values()), log_vars
    assert any(float(log_vars[k]) > 0 for k in model.distill_losses), log_vars
    assert any(not torch.equal(p, b) for p, b in zip(trainable, before))  # a step was taken


def _adapter_config() -> str:
    """A shipped config with feature adapters, preferably one without the hook."""
    def has_adapter(rel):
        losses = PARSED[rel].model.get('distill_losses') or {}
        return any(loss.get('adapter') or (loss.get('student_channels') and loss.get(
            'teacher_channels') and loss['student_channels'] != loss['teacher_channels'])
            for loss in losses.values())

    with_adapters = [rel for rel in CONFIGS if has_adapter(rel)]
    assert with_adapters, 'no shipped config has feature adapters'
    hookless = [rel for rel in with_adapters if HOOK not in _hooks(rel)]
    return (hookless or with_adapters)[0]


def _student_config(model, model_cfg: dict) -> dict:
    """The stock student of a distiller: its MMDetection class, with that class's arguments."""
    student_cls = next(c for c in type(model).__mro__
                       if not c.__module__.startswith('mmkdcal')
                       and MODELS.get(c.__name__) is c)
    accepted = inspect.signature(student_cls.__init__).parameters
    cfg = {k: copy.deepcopy(v) for k, v in model_cfg.items() if k in accepted}
    cfg['type'] = student_cls.__name__
    return cfg


def test_adapters_without_the_hook_save_resume_and_reload_strictly(tmp_path, random_teacher):
    rel = _adapter_config()
    _, model_cfg, model = build_toy(rel, random_teacher)
    assert model.distill_state_dict(), f'{rel} builds no adapter at toy size'
    if not model.has_teacher_temperature:
        model_cfg['teacher_temperature'] = 1.0
    data = write_coco(str(tmp_path / 'data'), n_images=4, size=64)
    run = train_config(model_cfg, data, max_iters=4, checkpoint_interval=2, lr=0.05)
    run.update(val_cfg=None, val_dataloader=None, val_evaluator=None,
               work_dir=str(tmp_path / 'work'))
    run['train_cfg']['val_interval'] = 100
    assert HOOK not in [h['type'] for h in run.get('custom_hooks', [])]
    cfg_path = dump_config(run, str(tmp_path / 'run.py'))

    # iterations 0-1, checkpoint at 2
    cfg = Config.fromfile(cfg_path)
    cfg.train_cfg.max_iters = 2
    cfg.experiment_name = f'adapters_a_{uuid.uuid4().hex}'  # a MessageHub of its own
    runner = Runner.from_cfg(cfg)
    runner.train()
    saved = {k: v.clone() for k, v in runner.model.distill_state_dict().items()}
    ckpt = load_checkpoint_file(last_checkpoint(str(tmp_path / 'work')))
    assert ckpt['meta']['iter'] == 2
    in_ckpt = ckpt['message_hub']['runtime_info'][DISTILL_STATE_KEY]
    assert set(in_ckpt) == set(saved)
    assert all(torch.equal(in_ckpt[k], saved[k]) for k in saved)
    # the checkpoint is a plain student checkpoint: strict load into the stock student
    student = MODELS.build(ConfigDict(_student_config(model, model_cfg)))
    result = student.load_state_dict(ckpt['state_dict'], strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    assert not [k for k in ckpt['state_dict'] if 'distill_losses' in k or 'teacher' in k]

    # --resume: the first resumed step trains from the saved adapters, bit for bit
    cfg = Config.fromfile(cfg_path)
    cfg.update(resume=True, experiment_name=f'adapters_b_{uuid.uuid4().hex}')
    runner = Runner.from_cfg(cfg)
    fresh = {k: v.clone() for k, v in runner.model.distill_state_dict().items()}
    assert any(not torch.equal(fresh[k], saved[k]) for k in saved)  # a restore is needed
    seen = probe_first_distill_step(runner)
    runner.train()
    assert runner.iter == 4
    assert set(seen) == set(saved)
    for k in saved:
        assert torch.equal(seen[k], saved[k]), k
    # the run goes on training them, and the next checkpoint holds their new values
    ckpt = load_checkpoint_file(last_checkpoint(str(tmp_path / 'work')))
    assert ckpt['meta']['iter'] == 4
    final = runner.model.distill_state_dict()
    assert all(torch.equal(ckpt['message_hub']['runtime_info'][DISTILL_STATE_KEY][k], final[k])
               for k in final)
    assert any(not torch.equal(final[k], saved[k]) for k in saved)

    # load_from (a new run, not a resume) starts with fresh adapters
    cfg = Config.fromfile(cfg_path)
    cfg.update(load_from=last_checkpoint(str(tmp_path / 'work')),
               work_dir=str(tmp_path / 'work_b'), experiment_name=f'new_{uuid.uuid4().hex}')
    cfg.train_cfg.max_iters = 1
    runner = Runner.from_cfg(cfg)
    seen = probe_first_distill_step(runner)
    runner.train()
    assert set(seen) == set(final)
    assert all(not torch.equal(seen[k], final[k]) for k in final)
