"""Calibrating DETR-family teachers: the per-query modes against the head's own Hungarian
assignment, ``'detections'`` on the quantity the distiller scales, and a 2-iteration KD run from
a calibrated DINO teacher through MMEngine's Runner."""
import copy
import json
import math
import os.path as osp
from collections import Counter

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import ConfigDict
from mmengine.runner import Runner

import mmkdcal  # noqa: F401
from mmdet.registry import MODELS
from mmkdcal.engine import collect_calibration_data
from mmkdcal.engine.calibration_modes import GroundTruthIndex, get_calibration_mode, image_key
from mmkdcal.utils.checkpoint import load_checkpoint_file

from _detr_helpers import deformable_detr_model, detr_model, dino_model, distill_type
from _helpers import dump_config, last_checkpoint, train_config, write_coco

torch.set_num_threads(1)


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    return write_coco(str(tmp_path_factory.mktemp('coco')), n_images=4)


def _loader(data, model_cfg):
    return Runner.build_dataloader(train_config(model_cfg, data)['val_dataloader'], seed=0)


def _model(cfg, seed=0):
    torch.manual_seed(seed)
    model = MODELS.build(ConfigDict(copy.deepcopy(cfg)))
    model.init_weights()
    return model.eval()


@pytest.mark.parametrize('family', ['deformable', 'detr'])
def test_query_modes_label_the_heads_hungarian_assignment(data, family):
    """One query per ground-truth box is foreground, with that box's class (from the dataset's
    annotations), every other query background; the logits are the final decoder layer's."""
    cfg = deformable_detr_model() if family == 'deformable' else detr_model()
    fit_on = 'queries' if family == 'deformable' else 'queries_softmax'
    model = _model(cfg)
    loader = _loader(data, cfg)
    collected = collect_calibration_data(model, loader, fit_on, progress=False)
    k, q = 3, cfg['num_queries']
    n = len(loader.dataset)
    assert collected['num_images'] == n
    assert collected['logits'].shape == (n * q, k if family == 'deformable' else k + 1)
    gt = GroundTruthIndex(loader.dataset)
    labels = collected['labels'].reshape(n, q)
    keys = sorted((image_key(loader.dataset[i]['data_samples']) for i in range(n)), key=repr)
    for row, key in zip(labels, keys):
        want = Counter(gt.by_key[key][1].tolist())
        assert Counter(row[row < k].tolist()) == want and (row == k).sum() == q - sum(
            want.values())
    # the logits are those of the last decoder layer (recomputed for the first batch)
    batch = model.data_preprocessor(next(iter(loader)), False)
    with torch.no_grad():
        feats = model.extract_feat(batch['inputs'])
        cls, _ = model.bbox_head(**model.forward_transformer(feats, batch['data_samples']))
    first = image_key(batch['data_samples'][0])
    idx = keys.index(first)
    assert torch.allclose(collected['logits'][idx * q:(idx + 1) * q], cls[-1, 0], atol=1e-5)
    # the other activation's mode is refused, naming this one
    other = 'queries_softmax' if fit_on == 'queries' else 'queries'
    with pytest.raises(ValueError, match=f"use fit_on='{fit_on}'"):
        get_calibration_mode(other, model)


def test_detections_mode_scores_are_the_query_logits_the_distiller_scales(data):
    """For a sigmoid DETR head a detection's score is sigmoid(one query's class logit), so the
    temperature fitted on detections divides exactly the logits that KD distils."""
    cfg = deformable_detr_model(num_queries=6)
    model = _model(cfg)
    loader = _loader(data, cfg)
    collected = collect_calibration_data(model, loader, 'detections', score_thr=0.0,
                                         progress=False)
    want = []
    for batch in loader:
        batch = model.data_preprocessor(batch, False)
        with torch.no_grad():
            feats = model.extract_feat(batch['inputs'])
            cls, _ = model.bbox_head(**model.forward_transformer(feats, batch['data_samples']))
        for img in range(cls.shape[1]):  # mmdet keeps the top max_per_img (query, class) pairs
            want.append(cls[-1, img].flatten().topk(cfg['test_cfg']['max_per_img']).values)
    want = torch.cat(want).sort().values
    got = collected['logits'].sort().values
    assert got.shape == want.shape
    assert torch.allclose(got, want.clamp(math.log(1e-6 / (1 - 1e-6)), 13.8155), atol=1e-3)


def test_two_iterations_of_kd_from_a_calibrated_dino_teacher(data, tmp_path):
    """Runner + TeacherCalibrationHook(fit_on='queries'): the fitted temperature minimises the
    teacher's per-query NLL, reaches the distiller and the checkpoint meta, and the checkpoint
    is a plain DINO checkpoint."""
    t_cfg = dino_model(width=8)
    torch.manual_seed(1)
    teacher = MODELS.build(ConfigDict(copy.deepcopy(t_cfg)))
    teacher.init_weights()
    with torch.no_grad():  # an over-confident teacher (logits x 4): T should come out > 1
        for branch in teacher.bbox_head.cls_branches:
            branch.weight.mul_(4.0)
    t_path = dump_config(dict(model=t_cfg), str(tmp_path / 'teacher.py'))
    t_ckpt = str(tmp_path / 'teacher.pth')
    torch.save({'state_dict': teacher.state_dict(), 'meta': {}}, t_ckpt)
    s_cfg = dino_model(width=4)
    s_cfg['neck']['in_channels'] = [16, 32]
    model_cfg = dict(copy.deepcopy(s_cfg), type=distill_type(s_cfg), teacher_config=t_path,
                     teacher_ckpt=t_ckpt, teacher_temperature=None, distill_losses=dict(
                         loss_kd=dict(type='BinaryKDLoss', inputs='logits', beta=1.0),
                         loss_kd_box=dict(type='BoxKDLoss', inputs='boxes', l1_weight=5.0,
                                          giou_weight=2.0)))
    cfg = train_config(model_cfg, data, max_iters=2, lr=1e-4, custom_hooks=[
        dict(type='TeacherCalibrationHook', fit_on='queries', objective='nll')])
    cfg['optim_wrapper'] = dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-4),
                                clip_grad=dict(max_norm=0.1))
    cfg['work_dir'] = str(tmp_path / 'work')
    cfg['custom_hooks'][0]['dataloader'] = train_config(s_cfg, data)['val_dataloader']
    runner = Runner.from_cfg(ConfigDict(cfg))
    before = {k: v.clone() for k, v in runner.model.state_dict().items()}
    runner.train()
    model = runner.model
    assert model.temperature_source == 'fitted'
    t = float(model.teacher_temperature)
    with open(osp.join(cfg['work_dir'], 'teacher_calibration.json')) as f:
        report = json.load(f)
    assert report['temperature'] == pytest.approx(t) and report['fit_on'] == 'queries'
    # T minimises the NLL of the teacher's per-query logits against their Hungarian labels
    loader = Runner.build_dataloader(cfg['custom_hooks'][0]['dataloader'], seed=0)
    collected = collect_calibration_data(model.teacher, loader, 'queries', progress=False)
    z, y = collected['logits'], collected['labels']
    onehot = torch.zeros_like(z)
    onehot[y < z.shape[1], y[y < z.shape[1]]] = 1.0

    def nll(temp):
        return F.binary_cross_entropy_with_logits(z / temp, onehot, reduction='sum').item()
    assert t > 1.0 and nll(t) <= min(nll(t * 1.05), nll(t / 1.05)) + 1e-6
    # training happened, and the checkpoint is the student's, with T in its meta
    changed = [k for k, v in model.state_dict().items() if not torch.equal(v, before[k])]
    assert any(k.startswith('decoder.') for k in changed)
    ckpt = load_checkpoint_file(last_checkpoint(cfg['work_dir']))
    assert ckpt['meta']['teacher_temperature'] == pytest.approx(t)
    stock = MODELS.build(ConfigDict(copy.deepcopy(s_cfg)))
    result = stock.load_state_dict(ckpt['state_dict'], strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    log = open(osp.join(runner.log_dir, f'{osp.basename(runner.log_dir)}.log')).read()
    assert 'loss_kd:' in log and 'loss_kd_box:' in log and 'Teacher calibration' in log
