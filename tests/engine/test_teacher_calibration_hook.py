"""TeacherCalibrationHook and the calibration pass: planted temperatures, resume, DDP."""
import copy
import json
import math
import os
import os.path as osp

import pytest
import torch

import mmkdcal  # noqa: F401
from mmengine.config import ConfigDict
from mmengine.runner import Runner
from mmengine.structures import InstanceData
from mmdet.structures import DetDataSample
from mmdet.registry import MODELS

from mmkdcal.calibration import fit_temperature
from mmkdcal.engine import collect_calibration_data, fit_and_report
from mmkdcal.utils.checkpoint import load_checkpoint_file
from _helpers import (ROOT, dump_config, faster_rcnn_model, gfl_model, last_checkpoint, run_tool,
                      train_config, write_coco)

torch.set_num_threads(1)


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    return write_coco(str(tmp_path_factory.mktemp('coco')), n_images=6)


def _loader(data):
    cfg = train_config(gfl_model(), data)['val_dataloader']
    return Runner.build_dataloader(cfg, seed=0)


@pytest.mark.parametrize('model_fn,fit_on', [(gfl_model, 'anchors'),
                                             (faster_rcnn_model, 'rois')])
def test_fitted_temperature_tracks_a_planted_logit_scale(data, model_fn, fit_on):
    """Multiplying the teacher's classifier by 3 multiplies its fitted temperature by 3."""
    torch.manual_seed(0)
    model = MODELS.build(ConfigDict(model_fn(width=16)))
    cls = model.bbox_head.gfl_cls if fit_on == 'anchors' else model.roi_head.bbox_head.fc_cls
    if fit_on == 'rois':  # an untrained RoI head carries no signal; favour background, as trained
        with torch.no_grad():  # heads do (most sampled RoIs are background)
            cls.bias[-1] = 2.0
    loader = _loader(data)
    torch.manual_seed(0)  # the RoI sampler is random: sample the same RoIs in both passes
    base = collect_calibration_data(model, loader, fit_on, progress=False)
    assert base['logits'].shape[0] == base['labels'].shape[0] > 50
    t1 = fit_temperature(base['logits'], base['labels'],
                         mode='sigmoid' if fit_on == 'anchors' else 'softmax')
    with torch.no_grad():
        cls.weight.mul_(3.0)
        cls.bias.mul_(3.0)
    torch.manual_seed(0)
    scaled = collect_calibration_data(model, loader, fit_on, progress=False)
    # same samples (the assignment does not depend on class scores), logits x3
    assert torch.equal(scaled['labels'], base['labels'])
    assert torch.allclose(scaled['logits'], 3 * base['logits'], rtol=1e-3, atol=1e-4)
    t3 = fit_temperature(scaled['logits'], scaled['labels'],
                         mode='sigmoid' if fit_on == 'anchors' else 'softmax')
    assert float(t3) / float(t1) == pytest.approx(3.0, rel=1e-3)


def test_report_before_after_and_files(data, tmp_path):
    torch.manual_seed(0)
    model = MODELS.build(ConfigDict(gfl_model(width=16)))
    with torch.no_grad():  # an over-confident teacher
        model.bbox_head.gfl_cls.weight.mul_(5.0)
    collected = collect_calibration_data(model, _loader(data), 'anchors', progress=False)
    report = fit_and_report(collected, 'anchors', objective='nll', out_dir=str(tmp_path))
    assert report['temperature'] == pytest.approx(
        float(fit_temperature(collected['logits'], collected['labels'], mode='sigmoid')),
        rel=1e-5)
    with open(tmp_path / 'teacher_calibration.json') as f:
        saved = json.load(f)
    assert saved['temperature'] == pytest.approx(report['temperature'])
    assert saved['num_samples'] == len(collected['labels'])
    assert (tmp_path / 'teacher_calibration.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    with pytest.raises(ValueError, match='no samples'):
        fit_and_report({'logits': torch.zeros(0, 3), 'labels': torch.zeros(0).long()}, 'anchors')
    with pytest.raises(FloatingPointError, match='NaN'):
        fit_and_report({'logits': torch.full((4, 3), float('nan')),
                        'labels': torch.zeros(4).long()}, 'anchors')


def _kd_cal_config(tmp_path, data, max_iters, hook=None, temperature=None):
    teacher_cfg = gfl_model(width=16, stacked_convs=2)
    torch.manual_seed(1)
    teacher = MODELS.build(ConfigDict(copy.deepcopy(teacher_cfg)))
    teacher.init_weights()  # heads start from their class prior, as trained ones roughly are
    t_cfg = dump_config(dict(model=teacher_cfg), str(tmp_path / 'teacher.py'))
    ckpt = str(tmp_path / 'teacher.pth')
    torch.save({'state_dict': teacher.state_dict()}, ckpt)
    student = gfl_model(width=8)
    student.update(type='DistillSingleStageDetector', teacher_config=t_cfg, teacher_ckpt=ckpt,
                   teacher_temperature=temperature,
                   distill_losses=dict(loss_kd=dict(type='BinaryKDLoss', inputs='cls')))
    hooks = [hook or dict(type='TeacherCalibrationHook', fit_on='detections', score_thr=0.0)]
    cfg = train_config(student, data, max_iters=max_iters, checkpoint_interval=2,
                       custom_hooks=hooks)
    return dump_config(cfg, str(tmp_path / 'kd_cal.py'))


def test_kd_cal_run_fits_saves_and_resumes_with_the_same_temperature(data, tmp_path):
    cfg_path = _kd_cal_config(tmp_path, data, max_iters=4,
                              hook=dict(type='TeacherCalibrationHook', fit_on='anchors'))
    work = str(tmp_path / 'work')
    out = run_tool('tools/train.py', cfg_path, '--work-dir', work,
                   '--cfg-options', 'train_cfg.max_iters=2', 'train_cfg.val_interval=100')
    assert 'Calibrating the teacher' in out and 'Teacher calibration: temperature' in out
    with open(osp.join(work, 'teacher_calibration.json')) as f:
        fitted = json.load(f)['temperature']
    assert fitted > 0 and math.isfinite(fitted)
    ckpt2 = load_checkpoint_file(last_checkpoint(work))
    assert ckpt2['meta']['teacher_temperature'] == pytest.approx(fitted)
    # plain student checkpoint: no teacher weights inside
    assert not any(k.startswith('teacher') for k in ckpt2['state_dict'])

    out = run_tool('tools/train.py', cfg_path, '--work-dir', work, '--resume')
    assert 'resumed epoch: 0, iter: 2' in out
    assert 'Calibrating the teacher' not in out
    assert 'Teacher calibrator from the checkpoint' in out
    assert 'Iter(train) [3/4]' in out and 'Iter(train) [1/4]' not in out
    ckpt4 = last_checkpoint(work)
    assert load_checkpoint_file(ckpt4)['meta']['teacher_temperature'] == pytest.approx(fitted)

    # the distilled checkpoint loads into the plain student config and evaluates
    student_cfg = train_config(gfl_model(width=8), data)
    student_path = dump_config(student_cfg, str(tmp_path / 'student.py'))
    out = run_tool('tools/test.py', student_path, ckpt4, '--work-dir', str(tmp_path / 'test'))
    assert 'coco/bbox_mAP_50' in out
    assert 'unexpected key' not in out and 'missing keys' not in out


@pytest.mark.parametrize('calibrator,fit_on,target', [
    ('class_temperature', 'anchors', 'tp'), ('platt', 'anchors', 'tp'),
    ('isotonic', 'detections', 'iou'), ('auto', 'detections', 'tp')])
def test_kd_cal_run_with_each_calibrator_resumes_it_and_reloads_strictly(
        data, tmp_path, calibrator, fit_on, target):
    hook = dict(type='TeacherCalibrationHook', fit_on=fit_on, calibrator=calibrator,
                target=target, score_thr=0.0, iou_thr=0.01)  # a random teacher's boxes
    cfg_path = _kd_cal_config(tmp_path, data, max_iters=4, hook=hook)
    work = str(tmp_path / 'work')
    out = run_tool('tools/train.py', cfg_path, '--work-dir', work,
                   '--cfg-options', 'train_cfg.max_iters=2', 'train_cfg.val_interval=100')
    assert f'calibrator={calibrator}' in out and 'Teacher calibration: ' in out
    with open(osp.join(work, 'teacher_calibration.json')) as f:
        report = json.load(f)
    if calibrator == 'auto':  # every candidate fitted on one half, reported on the other
        names = [r['name'] for r in report['splits']]
        assert names == ['temperature', 'class_temperature', 'platt', 'isotonic']
        assert report['calibrator'] in names
    else:
        assert report['calibrator'] == calibrator and len(report['splits']) == 1
    saved = load_checkpoint_file(last_checkpoint(work))['meta']['teacher_calibration']
    assert saved['calibrator'] == report['calibrator']
    out = run_tool('tools/train.py', cfg_path, '--work-dir', work, '--resume')
    assert 'Teacher calibrator from the checkpoint' in out and 'Calibrating' not in out
    final = load_checkpoint_file(last_checkpoint(work))
    again = final['meta']['teacher_calibration']
    for key, value in saved.items():
        if isinstance(value, torch.Tensor):
            assert torch.equal(again[key], value), key
        else:
            assert again[key] == value, key
    # the distilled checkpoint is a plain student checkpoint
    student = MODELS.build(ConfigDict(gfl_model(width=8)))
    student.load_state_dict(final['state_dict'], strict=True)


def test_given_temperature_is_used_without_a_pass(data, tmp_path):
    cfg_path = _kd_cal_config(tmp_path, data, max_iters=1, temperature=1.7)
    out = run_tool('tools/train.py', cfg_path, '--work-dir', str(tmp_path / 'w'),
                   '--cfg-options', 'train_cfg.val_interval=100')
    assert 'Teacher calibrator from the config: temperature 1.7' in out
    assert 'Calibrating the teacher' not in out


RANK_DUMP = '''
import json, os
from mmengine.hooks import Hook
from mmdet.registry import HOOKS

@HOOKS.register_module()
class RankDumpHook(Hook):
    priority = 'LOWEST'
    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        model = runner.model.module
        path = os.path.join(os.environ['RANK_DUMP_DIR'], f"rank{os.environ['RANK']}.json")
        with open(path, 'w') as f:
            json.dump(dict(t=model.teacher_temperature.tolist(),
                           world=runner.world_size,
                           n_data=len(runner.train_dataloader),
                           losses={k: float(v) for k, v in outputs.items()}), f)
'''


def test_two_process_cpu_ddp_kd_cal(tmp_path):
    """Both ranks get one temperature, the one a single process fits: with an odd image count
    the distributed sampler repeats an image, and each image counts once."""
    data = write_coco(str(tmp_path / 'odd'), n_images=5, seed=3)
    (tmp_path / 'rank_dump.py').write_text(RANK_DUMP)
    cfg_path = _kd_cal_config(tmp_path, data, max_iters=2, hook=dict(
        type='TeacherCalibrationHook', fit_on='anchors'))
    from mmengine.config import Config
    cfg = Config.fromfile(cfg_path)
    cfg.custom_imports = dict(imports=['mmkdcal', 'rank_dump'], allow_failed_imports=False)
    cfg.custom_hooks.append(dict(type='RankDumpHook'))
    cfg.dump(cfg_path)
    work = str(tmp_path / 'work')
    env = dict(PYTHONPATH=f'{ROOT}{os.pathsep}{tmp_path}', RANK_DUMP_DIR=str(tmp_path))
    run_tool('-m', 'torch.distributed.run', '--nproc_per_node', '2', '--master_port', '29533',
             'tools/train.py', cfg_path, '--launcher', 'pytorch', '--work-dir', work,
             '--cfg-options', 'train_cfg.val_interval=100', env=env, timeout=400)
    dumps = [json.load(open(tmp_path / f'rank{r}.json')) for r in (0, 1)]
    assert dumps[0]['world'] == dumps[1]['world'] == 2
    assert dumps[0]['t'] == dumps[1]['t'] and dumps[0]['t'] > 0
    # sharded data: 5 images, batch 2, 2 ranks -> 2 batches per rank (3 without sharding)
    assert dumps[0]['n_data'] == 2
    for d in dumps:
        assert all(math.isfinite(v) for v in d['losses'].values())
        assert 'loss_kd' in d['losses']
    with open(osp.join(work, 'teacher_calibration.json')) as f:
        report = json.load(f)
    assert report['temperature'] == pytest.approx(dumps[0]['t'])
    assert report['num_images'] == 5
    assert last_checkpoint(work).endswith('iter_2.pth')
    # the single-process fit of the same teacher on the same split
    teacher = MODELS.build(ConfigDict(gfl_model(width=16, stacked_convs=2)))
    teacher.load_state_dict(torch.load(str(tmp_path / 'teacher.pth'))['state_dict'])
    single = fit_and_report(collect_calibration_data(teacher, _loader(data), 'anchors',
                                                     progress=False), 'anchors')
    # (the distiller's teacher is BatchNorm-folded: fp32 rounding of the logits)
    assert single['temperature'] == pytest.approx(report['temperature'], rel=1e-4)


class _FakeDataset:
    """Annotations of one 100 x 200 image (a box of class 1, a crowd box of class 0)."""

    def __len__(self):
        return 1

    def get_data_info(self, i):
        return dict(img_id=7, instances=[
            dict(bbox=[0., 0., 10., 10.], bbox_label=1, ignore_flag=0),
            dict(bbox=[50., 50., 90., 90.], bbox_label=0, ignore_flag=1)])


class _FakeDetector(torch.nn.Module):
    """Predicts fixed boxes, in original coordinates only when asked to rescale (x2 resize)."""

    def predict(self, inputs, samples, rescale=False):
        out = samples[0].clone()
        boxes = torch.tensor([[0., 0., 10., 10.], [0., 0., 10., 11.], [51., 51., 90., 90.],
                              [0., 0., 10., 10.]])
        out.pred_instances = InstanceData(bboxes=boxes if rescale else boxes * 2,
                                          scores=torch.tensor([0.9, 0.8, 0.7, 0.2]),
                                          labels=torch.tensor([1, 1, 0, 0]))
        return [out]


def test_detection_collection_matches_in_original_coordinates_and_drops_crowd_hits():
    """logit = log(s/(1-s)); matched by IoU/class against the dataset's annotations in original
    coordinates (the input was resized x2); detections on crowd boxes dropped."""
    from mmkdcal.engine.calibration_modes import CalibrationContext, GroundTruthIndex, \
        get_calibration_mode

    sample = DetDataSample(metainfo=dict(img_id=7, img_shape=(200, 400), ori_shape=(100, 200),
                                         scale_factor=(2.0, 2.0)))
    ctx = CalibrationContext(score_thr=0.1, iou_thr=0.5,
                             ground_truth=GroundTruthIndex(_FakeDataset()))
    mode = get_calibration_mode('detections')
    (key, got), = mode.collect(_FakeDetector(), dict(inputs=None, data_samples=[sample]), ctx)
    assert key == ('img_id', 7)
    # det 0 matches the GT; det 1 is a duplicate (unmatched); det 2 sits on a crowd box
    # (dropped); det 3 has the wrong class (unmatched)
    assert got['matched'].tolist() == [True, False, False]
    assert torch.allclose(got['logits'], torch.logit(torch.tensor([0.9, 0.8, 0.2])), atol=1e-5)
    # relative box centres (cx / W, cy / H) of the kept detections, W = 200, H = 100
    assert torch.allclose(got['features'], torch.tensor([[0.025, 0.05], [0.025, 0.055],
                                                         [0.025, 0.05]]), atol=1e-6)


def test_metric_and_pass_share_the_matching():
    """DetectionCalibrationMetric and the pass report the same D-ECE on the same detections."""
    from mmkdcal.calibration import detection_ece
    from mmkdcal.engine.calibration_modes import CalibrationContext, GroundTruthIndex, \
        get_calibration_mode
    from mmkdcal.evaluation import DetectionCalibrationMetric

    sample = DetDataSample(metainfo=dict(img_id=7, img_shape=(200, 400), ori_shape=(100, 200),
                                         scale_factor=(2.0, 2.0)))
    pred = _FakeDetector().predict(None, [sample], rescale=True)[0]
    pred.gt_instances = InstanceData(bboxes=torch.tensor([[0., 0., 10., 10.]]),
                                     labels=torch.tensor([1]))
    pred.ignored_instances = InstanceData(bboxes=torch.tensor([[50., 50., 90., 90.]]),
                                          labels=torch.tensor([0]))
    metric = DetectionCalibrationMetric(score_thr=0.1, n_bins=5)
    metric.process({}, [pred])
    got = metric.compute_metrics(metric.results)
    ctx = CalibrationContext(score_thr=0.1, ground_truth=GroundTruthIndex(_FakeDataset()))
    (_, rec), = get_calibration_mode('detections').collect(
        _FakeDetector(), dict(inputs=None, data_samples=[sample]), ctx)
    p = rec['logits'].sigmoid()
    assert got['dece'] == pytest.approx(detection_ece(p, rec['matched'], n_bins=5), abs=1e-6)
    assert got['dece_box'] == pytest.approx(
        detection_ece(p, rec['matched'], features=rec['features'], n_bins=5), abs=1e-6)


@pytest.mark.parametrize('direction', ['under', 'over'])
def test_under_confident_teachers_are_warned_about(direction):
    """Planted detections: matched at twice their score (under-confident) or at half of it
    (over-confident); only the first gets the warning, and T falls on the side of 1 that the
    direction implies for scores below 0.5 (T > 1 raises them)."""
    from mmkdcal.engine import under_confidence_warning
    g = torch.Generator().manual_seed(0)
    scores = torch.rand(20000, generator=g) * 0.4 + 0.05
    rate = scores * 2 if direction == 'under' else scores / 2
    matched = torch.rand(20000, generator=g) < rate
    data = dict(logits=torch.logit(scores), matched=matched,
                features=torch.rand(20000, 4, generator=g), num_images=100)
    report = fit_and_report(data, 'detections', objective='nll', n_bins=10)
    before = report['before']
    # over - under is the mean score minus the match rate (the precision)
    assert before['dece_over'] - before['dece_under'] == pytest.approx(
        float(scores.mean() - matched.float().mean()), abs=1e-5)
    warning = under_confidence_warning(report)
    if direction == 'under':
        assert report['temperature'] > 1
        assert warning is not None and 'model.teacher_temperature=1.0' in warning
        assert f"{before['dece_under']:.4f}" in warning
    else:
        assert report['temperature'] < 1 and warning is None
    # modes without the over/under split get no warning
    assert under_confidence_warning(dict(before=dict(ece=0.3), temperature=2.0)) is None


def test_hook_refuses_unknown_modes_calibrators_and_targets_when_built():
    from mmkdcal.engine.hooks import TeacherCalibrationHook
    with pytest.raises(ValueError, match=r"TeacherCalibrationHook: fit_on must be one of "
                                         r"\[.*'detections'.*\], got 'detection'"):
        TeacherCalibrationHook(fit_on='detection')
    with pytest.raises(ValueError, match=r"TeacherCalibrationHook: calibrator must be one of "
                                         r"\('temperature', 'class_temperature', 'platt', "
                                         r"'isotonic', 'auto'\), got 'histogram'"):
        TeacherCalibrationHook(calibrator='histogram')
    with pytest.raises(ValueError, match=r"target='iou' needs the IoU of each sample's match, "
                                         r"which fit_on='anchors' does not give; use fit_on in "
                                         r"\['detections'\]"):
        TeacherCalibrationHook(fit_on='anchors', target='iou')
    with pytest.raises(ValueError, match=r"objective='ece' chooses a temperature; "
                                         r"calibrator='platt'"):
        TeacherCalibrationHook(calibrator='platt', objective='ece')
    # detections bring their class: a per-class temperature fits each class's detections
    assert TeacherCalibrationHook(fit_on='detections', per_class=True).calibrator == \
        'class_temperature'
    assert TeacherCalibrationHook(fit_on='anchors', per_class=True).per_class


def _planted_detections(prob, n_images=200, per_image=100, seed=0):
    """Detections of 200 images whose true match rate is ``prob(score logit)``."""
    g = torch.Generator().manual_seed(seed)
    n = n_images * per_image
    z = torch.randn(n, generator=g, dtype=torch.float64) * 2
    matched = torch.bernoulli(prob(z), generator=g).bool()
    labels = torch.randint(0, 3, (n,), generator=g)
    counts = torch.full((n_images,), per_image)
    data = dict(logits=z.float(), matched=matched, features=torch.rand(n, 2, generator=g),
                labels=labels, num_images=n_images, num_classes=3)
    data['counts'] = {k: counts for k in ('logits', 'matched', 'features', 'labels')}
    return data


def test_auto_keeps_the_planted_best_calibrator_by_held_out_dece():
    # the truth is sigmoid(z) ** 3: only the isotonic map can undo that distortion
    data = _planted_detections(lambda z: torch.sigmoid(z) ** 3)
    report = fit_and_report(data, 'detections', calibrator='auto', n_bins=10)
    assert report['calibrator'] == 'isotonic' and report['state']['calibrator'] == 'isotonic'
    rows = {r['name']: r for r in report['splits']}
    assert list(rows) == ['temperature', 'class_temperature', 'platt', 'isotonic']
    held = {name: r['heldout_after']['dece'] for name, r in rows.items()}
    assert held['isotonic'] == min(held.values())
    assert held['isotonic'] < held['temperature'] / 2
    # the halves hold whole images: 100 of the 200 each, and the rows of exactly those images
    for r in rows.values():
        assert (r['fit_images'], r['heldout_images']) == (100, 100)
        assert r['fit_before']['num_dets'] == r['heldout_before']['num_dets'] == 100 * 100


def test_image_subset_keeps_each_images_rows_together():
    from mmkdcal.engine.teacher_calibration import image_subset
    counts = torch.tensor([2, 0, 3])
    data = dict(logits=torch.arange(5.0), gt=torch.tensor([7, 8, 9]), num_images=3,
                counts=dict(logits=counts, gt=torch.tensor([1, 1, 1])))
    sub = image_subset(data, torch.tensor([False, True, True]))
    assert sub['logits'].tolist() == [2.0, 3.0, 4.0] and sub['gt'].tolist() == [8, 9]
    assert sub['num_images'] == 2 and sub['counts']['logits'].tolist() == [0, 3]
