"""Tests of the teacher-calibration study (projects/teacher_studies/run_classification_study.py).

One ``--quick`` run (4 teachers x 2 seeds, ~20 s) is shared by the end-to-end checks; its
numbers are recomputed here from the raw numbers and logits it saved with independent
references: correlations written out by hand (tests/_stats_refs.py), torchmetrics' ECE,
numpy ACE / ECE_o / ECE_u / NLL, and a grid search for the NLL temperature.
"""
import json
import math
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch

import _stats_refs as refs
from _helpers import ROOT
from projects.teacher_studies.studies import digits_classifiers as dc
from projects.teacher_studies.studies import teacher_calibration_study as tcs
from projects.teacher_studies.studies.statistics import mean_ci
from projects.teacher_studies.studies.teacher_calibration_summary import correlation_table

TOOL = osp.join(ROOT, 'projects', 'teacher_studies', 'run_classification_study.py')


@pytest.fixture(scope='module')
def quick_run(tmp_path_factory):
    out = str(tmp_path_factory.mktemp('tcs'))
    env = dict(os.environ, OMP_NUM_THREADS='1', MPLBACKEND='Agg')
    proc = subprocess.run([sys.executable, TOOL, '--quick', '--seeds', '2', '--out', out],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(osp.join(out, 'results.json')) as f:
        results = json.load(f)
    logits = dict(np.load(osp.join(out, 'logits.npz')))
    return out, results, logits


def _walk_numbers(obj, path='$'):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _walk_numbers(v, f'{path}.{k}')
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _walk_numbers(v, f'{path}[{i}]')
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
        yield path, obj


def _numpy_ace(probs: np.ndarray, labels: np.ndarray, n_bins: int) -> float:
    """ACE of Nixon et al. 2019 written independently: per class, sort, split into equal-mass
    groups (numpy.array_split), mean |acc - conf| over classes and groups."""
    k = probs.shape[1]
    gaps = []
    for c in range(k):
        order = np.argsort(probs[:, c], kind='stable')
        p, t = probs[order, c], (labels[order] == c).astype(np.float64)
        for gp, gt in zip(np.array_split(p, n_bins), np.array_split(t, n_bins)):
            gaps.append(abs(gt.mean() - gp.mean()))
    return float(np.mean(gaps))


# ----------------------------------------------------------------------------- end-to-end


def test_outputs_exist_and_are_finite(quick_run):
    out, results, logits = quick_run
    for name in ('results.json', 'results.md', 'teacher_calibration_study.png', 'logits.npz'):
        assert osp.getsize(osp.join(out, name)) > 0, name
    import matplotlib.image as mpimg
    img = mpimg.imread(osp.join(out, 'teacher_calibration_study.png'))
    assert img.shape[0] > 400 and img.shape[1] > 1000
    numbers = list(_walk_numbers(results))
    assert len(numbers) > 200
    bad = [p for p, v in numbers if not math.isfinite(v)]
    assert not bad, bad
    assert len(results['runs']) == 2 * 4 and len(results['baseline']) == 2
    for c in results['correlations']['per_teacher_raw'].values():
        assert c['pearson_r'] is not None and c['spearman_rho'] is not None
    assert all(np.isfinite(v).all() for v in logits.values())


def test_correlations_match_hand_formulas(quick_run):
    """Every reported correlation equals Pearson r / Spearman rho written out by hand."""
    _, results, _ = quick_run
    runs, rows = results['runs'], results['per_teacher']
    assert [r['teacher'] for r in rows] == [t['name'] for t in results['config']['teachers']]
    corr = results['correlations']
    y = [r['student_acc_raw'] for r in rows]
    for key in ('ace', 'ece', 'ece_over', 'ece_under', 'nll', 'acc', 'kd_conf'):
        x = [r[key] for r in rows]
        c = corr['per_teacher_raw'][key]
        assert c['n'] == len(rows)
        assert c['pearson_r'] == pytest.approx(refs.pearson(x, y), abs=1e-9)
        assert c['pearson_p'] == pytest.approx(refs.pearson_p(refs.pearson(x, y), len(x)),
                                               abs=1e-7)
        assert c['spearman_rho'] == pytest.approx(refs.spearman(x, y), abs=1e-9)
        # pooled: the calibrated teachers' *_scaled metrics vs the calibrated-teacher students
        xs = x + [r[key if key == 'acc' else key + '_scaled'] for r in rows]
        ys = y + [r['student_acc_cal'] for r in rows]
        assert corr['per_teacher_pooled'][key]['pearson_r'] == pytest.approx(
            refs.pearson(xs, ys), abs=1e-9)
        assert corr['per_teacher_pooled'][key]['spearman_rho'] == pytest.approx(
            refs.spearman(xs, ys), abs=1e-9)
        # within each seed
        for seed in results['config']['seeds']:
            rs = [r for r in runs if r['seed'] == seed]
            assert corr['per_seed'][str(seed)][key]['pearson_r'] == pytest.approx(
                refs.pearson([r[key] for r in rs], [r['student_acc_raw'] for r in rs]),
                abs=1e-9)
    log_t = [math.log(r['t_cal']) for r in runs]
    gains = [r['student_acc_cal'] - r['student_acc_raw'] for r in runs]
    assert corr['gain_vs_log_t_cal']['pearson_r'] == pytest.approx(
        refs.pearson(log_t, gains), abs=1e-9)
    assert corr['gain_vs_log_t_cal']['spearman_rho'] == pytest.approx(
        refs.spearman(log_t, gains), abs=1e-9)
    assert corr['teacher_ace_vs_acc']['pearson_r'] == pytest.approx(
        refs.pearson([r['ace'] for r in rows], [r['acc'] for r in rows]), abs=1e-9)


def _numpy_ece_over_under(probs: np.ndarray, labels: np.ndarray, n_bins: int):
    """Top-label ECE_o / ECE_u written out: 15 equal-width bins of [0, 1) by
    searchsorted(right), confidences equal to 1 in a bin of their own."""
    conf, hit = probs.max(1), (probs.argmax(1) == labels).astype(np.float64)
    idx = np.searchsorted(np.linspace(0, 1, n_bins + 1), conf, side='right') - 1
    over = under = 0.0
    for b in np.unique(idx):
        m = idx == b
        gap = (conf[m].sum() - hit[m].sum()) / len(conf)
        over, under = over + max(gap, 0.0), under + max(-gap, 0.0)
    return over, under


def _numpy_nll(logits: np.ndarray, labels: np.ndarray, temp: float) -> float:
    z = logits / temp
    zmax = z.max(1, keepdims=True)
    lse = zmax[:, 0] + np.log(np.exp(z - zmax).sum(1))
    return float(np.mean(lse - z[np.arange(len(labels)), labels]))


def test_teacher_metrics_recomputed_from_saved_logits(quick_run):
    from torchmetrics.functional.classification import multiclass_calibration_error

    _, results, logits = quick_run
    y_test, y_cal = logits['y_test'], logits['y_cal']
    n_bins = results['config']['n_bins']
    for r in results['runs']:
        z = logits[f"s{r['seed']}/{r['teacher']}/test"].astype(np.float64)
        zc = logits[f"s{r['seed']}/{r['teacher']}/cal"].astype(np.float64)
        assert r['acc'] == pytest.approx(float((z.argmax(1) == y_test).mean()))
        for suffix, temp in (('', 1.0), ('_scaled', r['t_cal'])):
            p = torch.softmax(torch.from_numpy(z) / temp, dim=1)
            tm = float(multiclass_calibration_error(p.float(), torch.from_numpy(y_test), 10,
                                                    n_bins, norm='l1'))
            assert r['ece' + suffix] == pytest.approx(tm, abs=1e-5)
            assert r['ace' + suffix] == pytest.approx(_numpy_ace(p.numpy(), y_test, n_bins),
                                                      abs=1e-9)
            e_o, e_u = _numpy_ece_over_under(p.numpy(), y_test, n_bins)
            assert (r['ece_over' + suffix], r['ece_under' + suffix]) == pytest.approx((e_o, e_u),
                                                                                      abs=1e-9)
            assert r['nll' + suffix] == pytest.approx(_numpy_nll(z, y_test, temp), abs=1e-9)
            assert r['nll_cal' + suffix] == pytest.approx(_numpy_nll(zc, y_cal, temp),
                                                          abs=1e-9)


def test_fitted_temperature_is_the_nll_minimiser_of_a_grid_search(quick_run):
    _, results, logits = quick_run
    y_cal = logits['y_cal']
    grid = np.exp(np.linspace(np.log(0.05), np.log(20.0), 2001))  # steps of 0.3% in T
    for r in results['runs']:
        zc = logits[f"s{r['seed']}/{r['teacher']}/cal"].astype(np.float64)
        losses = [_numpy_nll(zc, y_cal, t) for t in grid]
        best = grid[int(np.argmin(losses))]
        assert r['t_cal'] == pytest.approx(best, rel=0.004), r['teacher']
        assert r['nll_cal_scaled'] < r['nll_cal']


def test_markdown_reports_the_numbers(quick_run):
    out, results, _ = quick_run
    with open(osp.join(out, 'results.md')) as f:
        md = f.read()
    c = results['correlations']['per_teacher_raw']['ace']
    assert f"{c['pearson_r']:+.3f}" in md and f"{c['spearman_rho']:+.3f}" in md
    assert '![teacher calibration study](teacher_calibration_study.png)' in md
    for row in results['per_teacher']:
        assert f"| {row['teacher']} |" in md and f"{row['t_cal']:.3f}" in md
    assert '## Reading' in md


# ----------------------------------------------------------------------------- units


def test_splits_are_disjoint_stratified_and_fixed():
    d = dc.load_digit_splits(n_cal=200, n_test=300, split_seed=3)
    assert (d['x_cal'].shape[0], d['x_test'].shape[0], d['x_train'].shape[0]) == (200, 300, 1297)
    rows = {tuple(x.flatten().tolist()) for k in ('x_train', 'x_cal', 'x_test') for x in d[k]}
    assert len(rows) >= 1797 - 10  # the digits hold a handful of duplicate scans
    counts = np.bincount(d['y_test'].numpy(), minlength=10)
    assert counts.min() >= 28 and counts.max() <= 31  # stratified: ~30 per class
    assert float(d['x_train'].max()) == 1.0 and float(d['x_train'].min()) == 0.0
    again = dc.load_digit_splits(n_cal=200, n_test=300, split_seed=3)
    assert torch.equal(again['y_test'], d['y_test'])
    with pytest.raises(ValueError, match='n_cal'):
        dc.load_digit_splits(n_cal=5)
    with pytest.raises(ValueError, match='n_test'):
        dc.load_digit_splits(n_cal=900, n_test=900)


def test_shift_augment_moves_a_planted_pixel():
    x = torch.zeros(2, 8, 8)
    x[0, 3, 4] = 1.0
    x[1, 0, 7] = 1.0  # on the border: shifting it out must drop it, not wrap it around
    xa, ya = dc.shift_augment(x, torch.tensor([5, 7]))
    assert xa.shape == (10, 8, 8) and ya.tolist() == [5, 7] * 5
    where = [tuple(torch.nonzero(xa[i]).flatten().tolist()) for i in range(0, 10, 2)]
    assert where == [(3, 4), (2, 4), (4, 4), (3, 3), (3, 5)]
    border = [int(xa[i].sum()) for i in range(1, 10, 2)]
    assert border == [1, 0, 1, 1, 0]  # up and right push it out
    with pytest.raises(ValueError, match='shift_augment'):
        dc.shift_augment(torch.zeros(2, 64), torch.zeros(2))


def test_correlation_and_ci_on_hand_cases():
    rows = [dict(ace=a, ece=a, ece_over=a, ece_under=a, nll=a, acc=1 - a, ace_scaled=a / 2,
                 ece_scaled=a / 2, ece_over_scaled=a / 2, ece_under_scaled=a / 2, nll_scaled=a / 2,
                 kd_conf=1 - a, kd_conf_scaled=1 - a / 2,
                 student_acc_raw=0.9 - 2 * a, student_acc_cal=0.9 - 4 * a)
            for a in (0.01, 0.02, 0.05, 0.1)]
    t = correlation_table(rows)
    assert t['ace']['pearson_r'] == pytest.approx(-1.0)
    assert t['acc']['spearman_rho'] == pytest.approx(1.0)
    pooled = correlation_table(rows, with_calibrated=True)
    # raw points (a, 0.9 - 2a) and calibrated (a/2, 0.9 - 4a): not collinear, r in (-1, 0)
    xs = [r['ace'] for r in rows] + [r['ace'] / 2 for r in rows]
    ys = [r['student_acc_raw'] for r in rows] + [r['student_acc_cal'] for r in rows]
    assert pooled['ace']['pearson_r'] == pytest.approx(refs.pearson(xs, ys))
    assert -1 < pooled['ace']['pearson_r'] < 0
    const = correlation_table([dict(rows[0], ace=0.3) for _ in range(4)])
    assert const['ace']['pearson_r'] is None  # undefined, reported as None rather than NaN
    ci = mean_ci([1.0, 2.0, 3.0])
    # mean 2, sd 1, t_{0.975, 2} = 4.302653 -> half-width 4.302653 / sqrt(3) = 2.484138
    assert (ci['mean'], ci['std']) == pytest.approx((2.0, 1.0))
    assert (ci['ci95_low'], ci['ci95_high']) == pytest.approx((2 - 2.484138, 2 + 2.484138),
                                                              abs=1e-5)


def test_teacher_metrics_recovers_a_planted_temperature():
    torch.manual_seed(0)
    n, t_true = 6000, 2.5
    z = torch.randn(2 * n, 10, dtype=torch.float64) * 4
    y = torch.multinomial(torch.softmax(z / t_true, 1), 1).squeeze(1)
    m = dc.teacher_metrics(z[:n], y[:n], z[n:], y[n:], n_bins=15)
    assert m['t_cal'] == pytest.approx(t_true, rel=0.05)
    assert m['ece_over'] > 5 * m['ece_under']  # logits 2.5x too sharp: over-confident
    assert m['ece_scaled'] < m['ece'] / 3 and m['nll_scaled'] < m['nll']


def test_student_runs_are_paired_and_kd_matters():
    torch.set_num_threads(1)
    from mmkdcal.models.losses import KDLoss
    g = torch.Generator().manual_seed(0)
    x = torch.rand(96, 8, 8, generator=g)
    y = torch.randint(0, 10, (96, ), generator=g)
    t_logits = torch.randn(96, 10, generator=g) * 3
    rec = dc.TrainRecipe('s', (8, ), epochs=2, batch_size=32)
    base = dc.train_classifier(rec, x, y, seed=4)
    # zero KD weight: identical initialisation and batches give identical weights
    off = dc.train_classifier(rec, x, y, seed=4, teacher_logits=t_logits, kd_loss=KDLoss(),
                              ce_weight=1.0, kd_weight=0.0)
    for a, b in zip(base.parameters(), off.parameters()):
        assert torch.equal(a, b)
    on = dc.train_classifier(rec, x, y, seed=4, teacher_logits=t_logits, kd_loss=KDLoss(),
                             ce_weight=1.0, kd_weight=1.0)
    assert not torch.equal(base[-1].weight, on[-1].weight)
    with pytest.raises(ValueError, match='teacher_logits'):
        dc.train_classifier(rec, x, y, seed=0, teacher_logits=t_logits)
    with pytest.raises(ValueError, match='teacher_logits'):
        dc.train_classifier(rec, x, y, seed=0, teacher_logits=t_logits[:5], kd_loss=KDLoss())


def test_recipe_and_config_validation():
    with pytest.raises(ValueError, match='label_smoothing'):
        dc.TrainRecipe('a', label_smoothing=1.0)
    with pytest.raises(ValueError, match='train_fraction'):
        dc.TrainRecipe('a', train_fraction=0.0)
    with pytest.raises(ValueError, match='name'):
        dc.TrainRecipe('a b')
    with pytest.raises(ValueError, match='teachers'):
        tcs.run_study(tcs.StudyConfig(student=dc.default_student_recipe(True)))
    with pytest.raises(ValueError, match='family'):
        dc.default_teacher_recipes(family='cifar')
    # the two families differ only in how the over-confident teachers are made
    matched, mixed = dc.default_teacher_recipes(), dc.default_teacher_recipes(family='mixed')
    assert all(r.augment for r in matched)
    assert {r.name for r in mixed if not r.augment} == {r.name for r in mixed} - {
        r.name for r in matched}
    with pytest.raises(ValueError, match='kd_weight'):
        tcs.StudyConfig(kd_weight=0.0)
    with pytest.raises(ValueError, match='tau'):
        tcs.StudyConfig(tau=0.0)
    with pytest.raises(TypeError, match='seeds'):
        tcs.StudyConfig(seeds=(0.5, ))
    twice = [dc.TrainRecipe('a'), dc.TrainRecipe('a')]
    with pytest.raises(ValueError, match='unique'):
        tcs.run_study(tcs.StudyConfig(teachers=twice, student=dc.default_student_recipe(True)))


def test_replot_reproduces_the_summary(quick_run, tmp_path):
    import shutil
    out, results, _ = quick_run
    dst = tmp_path / 'copy'
    shutil.copytree(out, dst)
    os.remove(dst / 'teacher_calibration_study.png')
    again = tcs.main(['--replot', '--out', str(dst)])
    assert osp.getsize(dst / 'teacher_calibration_study.png') > 0
    for key in ('per_teacher', 'correlations', 'gain', 'baseline_summary'):
        assert json.loads(json.dumps(again[key])) == results[key], key
    with pytest.raises(FileNotFoundError, match='replot'):
        tcs.main(['--replot', '--out', str(tmp_path / 'missing')])
