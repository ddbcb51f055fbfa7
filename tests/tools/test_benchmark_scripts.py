"""The benchmark scripts: complete, finite JSON, and printed ratios that are the ratios of the
printed times. Nothing here asserts anything about speed."""
import json
import math
import os.path as osp
import re
import statistics
import sys

import pytest
import torch

from _helpers import ROOT, run_tool

sys.path.insert(0, osp.join(ROOT, 'tools', 'benchmarks'))

import kd_overhead_cpu  # noqa: E402
import train_step  # noqa: E402

STEP_KEYS = ('student_step_ms', 'teacher_forward_ms', 'kd_step_ms',
             'kd_over_student_plus_teacher', 'kd_over_student')


def _finite_positive(x, where):
    assert isinstance(x, (int, float)) and not isinstance(x, bool), f'{where}: {x!r}'
    assert math.isfinite(x) and x > 0, f'{where} = {x}'


def _check_samples(samples, n, where):
    assert set(samples) and all(len(v) == n for v in samples.values()), where
    for name, values in samples.items():
        for v in values:
            _finite_positive(v, f'{where}.{name}')


def _printed_ratio_tol(num, den, num_err=0.005, den_err=0.005, ratio_err=0.0005):
    """How far a 3-decimal printed ratio may lie from num/den of printed (rounded) values."""
    return (num / den) * (num_err / num + den_err / den) * 1.01 + ratio_err


def _table_rows(out, first_cell):
    rows = []
    for line in out.splitlines():
        cells = [c.strip() for c in line.strip().strip('|').split('|')]
        if line.startswith('|') and cells[0] == first_cell:
            rows.append(cells)
    return rows


def test_train_step_toy_cpu_json_and_printed_arithmetic(tmp_path):
    out = run_tool('tools/benchmarks/train_step.py', '--device', 'cpu', '--size', '128', '128',
                   '--batch', '1', '--iters', '2', '--warmup', '1', '--models', 'gfl',
                   '--amp-dtype', 'bfloat16', '--calib-batches', '1', '--calib-repeats', '1',
                   '--threads', '1', '--out', str(tmp_path), timeout=120)
    report = json.load(open(tmp_path / 'train_step.json'))
    assert report['device'] == 'cpu' and report['num_threads'] == 1
    assert report['device_name'] in out
    assert set(report['models']) == {'gfl'}
    m = report['models']['gfl']
    assert m['student_config'] == 'mmdet::gfl/gfl_r50_fpn_1x_coco.py'
    assert m['teacher_config'] == 'mmdet::gfl/gfl_r101_fpn_ms-2x_coco.py'
    assert m['distill_losses'] == ['loss_kd_cls'] and m['temperature'] == 2.0
    # R-101 teacher > R-50 student; fp32 weights (4 bytes each) plus BN buffers
    assert m['teacher_params'] > m['student_params'] > 10_000_000
    assert m['teacher_weights_bytes'] > 4 * m['teacher_params']
    assert m['padded_input_shape'] == [1, 3, 128, 128]

    for prec in ('fp32', 'amp'):
        r = m[prec]
        for key in STEP_KEYS:
            _finite_positive(r[key], f'{prec}.{key}')
        _check_samples(r['samples_ms'], 2, f'{prec}.samples_ms')
        for name in ('student_step', 'teacher_forward', 'kd_step'):
            assert r[f'{name}_ms'] == statistics.median(r['samples_ms'][name])
        assert r['kd_over_student_plus_teacher'] == pytest.approx(
            r['kd_step_ms'] / (r['student_step_ms'] + r['teacher_forward_ms']), rel=1e-12)
        assert r['kd_over_student'] == pytest.approx(
            r['kd_step_ms'] / r['student_step_ms'], rel=1e-12)
        # peak memory is a CUDA measurement: on CPU it is absent, with the reason
        assert 'needs a CUDA device' in r['memory'] and 'kd_peak_bytes' not in r

    t = m['teacher_fp16']
    for key in ('fp32_forward_ms', 'fp16_forward_ms', 'speedup', 'max_abs_diff_scaled_logits'):
        _finite_positive(t[key], f'teacher_fp16.{key}')
    assert t['speedup'] == pytest.approx(t['fp32_forward_ms'] / t['fp16_forward_ms'], rel=1e-12)
    # fp16 really ran (logits differ) and stays close to fp32
    assert t['max_abs_diff_scaled_logits'] < 0.1

    c = m['calibration_pass']
    for key in ('collect_ms', 'predict_ms', 'collect_images_per_s', 'predict_images_per_s',
                'collect_over_predict_throughput'):
        _finite_positive(c[key], f'calibration_pass.{key}')
    assert c['images'] == 1
    # score_thr is 0 for the comparison: the random teacher returns max_per_img (100) detections
    assert c['detections_collected'] == 100
    assert c['collect_images_per_s'] == pytest.approx(1 / (c['collect_ms'] / 1e3), rel=1e-12)
    assert c['collect_over_predict_throughput'] == pytest.approx(
        c['predict_ms'] / c['collect_ms'], rel=1e-9)
    assert 'mmrazor' in m['mmrazor']['skipped']

    # the printed table: values are the JSON's, and its ratios those of the printed times
    rows = _table_rows(out, 'gfl')
    steps = {row[1]: row for row in rows if row[1] in ('fp32', 'amp')}
    assert set(steps) == {'fp32', 'amp'}
    for prec, row in steps.items():
        s, te, k, r1, r2 = (float(v) for v in row[2:7])
        assert (s, te, k) == tuple(round(m[prec][f'{n}_ms'], 2)
                                   for n in ('student_step', 'teacher_forward', 'kd_step'))
        assert r1 == pytest.approx(k / (s + te), abs=_printed_ratio_tol(k, s + te, den_err=0.01))
        assert r2 == pytest.approx(k / s, abs=_printed_ratio_tol(k, s))
    (fp16_row,) = [row for row in rows if len(row) == 5 and 'mmrazor' not in row[4]]
    assert float(fp16_row[1]) == round(t['fp32_forward_ms'], 2)
    a, b = float(fp16_row[1]), float(fp16_row[2])
    assert float(fp16_row[3]) == pytest.approx(a / b, abs=_printed_ratio_tol(a, b))
    (cal_row,) = [row for row in rows if len(row) == 5 and 'mmrazor' in row[4]]
    assert float(cal_row[1]) == round(c['collect_images_per_s'], 2)
    a, b = float(cal_row[1]), float(cal_row[2])
    assert float(cal_row[3]) == pytest.approx(a / b, abs=_printed_ratio_tol(a, b))


def test_kd_overhead_quick_json_and_printed_arithmetic(tmp_path, capsys):
    report = kd_overhead_cpu.main(['--quick', '--out', str(tmp_path)])
    out = capsys.readouterr().out
    saved = json.load(open(tmp_path / 'kd_overhead_cpu.json'))
    assert saved['kd_over_student_plus_teacher'] == report['kd_over_student_plus_teacher']
    assert saved['num_threads'] == 1 and 'torch.set_num_threads(1) -> 1 threads' in out
    for key in ('student_step_ms', 'teacher_forward_ms', 'kd_step_ms', 'distill_loss_ms',
                'kd_over_student_plus_teacher', 'kd_over_student',
                'kd_over_student_plus_teacher_per_round_median', 'student_params',
                'teacher_params', 'timing_wall_s'):
        _finite_positive(saved[key], key)
    _check_samples(saved['samples_ms'], 2, 'samples_ms')
    assert set(saved['samples_ms']) == {'student_step', 'teacher_forward', 'kd_step',
                                        'distill_loss'}
    assert saved['teacher_params'] > saved['student_params']
    s, t, k = (saved['samples_ms'][n] for n in ('student_step', 'teacher_forward', 'kd_step'))
    assert saved['kd_over_student_plus_teacher_per_round_median'] == pytest.approx(
        statistics.median([ki / (si + ti) for si, ti, ki in zip(s, t, k)]), rel=1e-12)
    assert saved['meets_target'] == (saved['kd_over_student_plus_teacher'] <= 1.10)

    printed = {name: float(re.search(rf'{re.escape(label)}\s+([\d.]+) ms', out).group(1))
               for name, label in (('s', '(a) student step'), ('t', '(b) teacher forward'),
                                   ('k', '(c) KD+cal step'))}
    assert printed['s'] == round(saved['student_step_ms'], 2)
    assert printed['k'] == round(saved['kd_step_ms'], 2)
    ratio = float(re.search(r'kd / \(student \+ teacher\) = ([\d.]+)', out).group(1))
    k, st = printed['k'], printed['s'] + printed['t']
    assert ratio == pytest.approx(k / st, abs=_printed_ratio_tol(k, st, den_err=0.01))
    assert ratio == round(saved['kd_over_student_plus_teacher'], 3)


def test_time_interleaved_alternates_order_after_warmup():
    calls = []
    fns = {n: (lambda n=n: calls.append(n)) for n in 'abc'}
    times = train_step.time_interleaved(fns, warmup=1, iters=3, device=torch.device('cpu'))
    assert calls == list('abc' 'abc' 'cba' 'abc')
    assert {n: len(v) for n, v in times.items()} == {'a': 3, 'b': 3, 'c': 3}
    with pytest.raises(ValueError, match='iters'):
        train_step.time_interleaved(fns, warmup=0, iters=0, device=torch.device('cpu'))


def test_synthetic_batch_boxes_inside_images_and_labels_in_range():
    raw = train_step.synthetic_batch(3, 96, 160, num_classes=80, boxes_per_image=50, seed=1)
    assert len(raw['inputs']) == 3
    for img, s in zip(raw['inputs'], raw['data_samples']):
        assert img.shape == (3, 96, 160) and img.dtype == torch.uint8
        b = s.gt_instances.bboxes
        assert b.shape == (50, 4)
        assert (b[:, 0] >= 0).all() and (b[:, 1] >= 0).all()
        assert (b[:, 2] <= 160 + 1e-4).all() and (b[:, 3] <= 96 + 1e-4).all()
        assert (b[:, 2:] - b[:, :2] >= 8).all()
        labels = s.gt_instances.labels
        assert labels.min() >= 0 and labels.max() < 80
    rois = train_step.random_rois(2, 96, 160, per_image=5)
    assert rois.shape == (10, 5) and rois[:, 0].tolist() == [0.0] * 5 + [1.0] * 5
    assert (rois[:, 3] <= 160 + 1e-4).all() and (rois[:, 4] <= 96 + 1e-4).all()


class _Quadratic(torch.nn.Module):
    """loss = sum((w - 1)^2); parse_losses as MMEngine's (sum of loss_* entries)."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.tensor([3.0, -2.0]))

    def loss(self, inputs, samples):
        return dict(loss_q=((self.w - 1) ** 2).sum())

    def parse_losses(self, losses):
        return sum(losses.values()), {}


def test_train_step_is_one_sgd_step_with_momentum_and_weight_decay():
    model = _Quadratic()
    step = train_step.TrainStep(model, torch.device('cpu'), amp=None, lr=0.1)
    step(None, None)
    w0 = torch.tensor([3.0, -2.0])
    grad = 2 * (w0 - 1) + 1e-4 * w0  # first SGD step: momentum buffer = gradient
    assert torch.allclose(model.w.detach(), w0 - 0.1 * grad, atol=1e-7)
    assert float(step.last_loss) == pytest.approx(4.0 + 9.0)
    # weights + one momentum buffer of 2 float32 values
    assert step.state_bytes() == 2 * 4 + 2 * 4
    amp = train_step.TrainStep(_Quadratic(), torch.device('cpu'), amp=torch.bfloat16, lr=0.1)
    assert amp.scaler is not None and amp.scaler.is_enabled()
    amp(None, None)  # the scaler unscales before the step: same update as fp32
    assert torch.allclose(amp.model.w.detach(), w0 - 0.1 * grad, atol=1e-6)


def test_bad_arguments_fail_early():
    with pytest.raises(ValueError, match='--ld needs a GFL head'):
        train_step.distill_losses_for({'bbox_head': {'type': 'RetinaHead'}}, ld=True)
    with pytest.raises(SystemExit):
        train_step.parse_args(['--iters', '0'])
    with pytest.raises(SystemExit):
        kd_overhead_cpu.parse_args(['--size', '32', '32'])
