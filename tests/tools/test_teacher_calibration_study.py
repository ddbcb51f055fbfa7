"""Tests of the teacher-calibration study (tools/analysis/teacher_calibration_study.py).

One ``--quick`` run (4 teachers x 2 seeds, ~20 s) is shared by the end-to-end checks; every
number it reports is recomputed here from the raw numbers and logits it saved, with scipy,
torchmetrics and hand-written numpy, not with the code under test.
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
import torch.nn.functional as F
from scipy import stats

from mmkdcal.analysis import teacher_calibration_study as tcs

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(ROOT, 'tools', 'analysis', 'teacher_calibration_study.py')


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


def test_per_teacher_means_and_correlations_match_scipy(quick_run):
    _, results, _ = quick_run
    runs, rows = results['runs'], results['per_teacher']
    assert [r['teacher'] for r in rows] == [t['name'] for t in results['config']['teachers']]
    for row in rows:
        rs = [r for r in runs if r['teacher'] == row['teacher']]
        for key in ('acc', 'ace', 'ece', 't_cal', 'student_acc_raw', 'student_acc_cal'):
            assert row[key] == pytest.approx(np.mean([r[key] for r in rs]), abs=1e-12)
        assert row['gain'] == pytest.approx(row['student_acc_cal'] - row['student_acc_raw'],
                                            abs=1e-12)
        assert row['direction'] == ('over' if row['t_cal'] > 1 else 'under')
    corr = results['correlations']
    y = [r['student_acc_raw'] for r in rows]
    for key in ('ace', 'ece', 'ece_o', 'ece_u', 'nll', 'acc', 'kd_conf'):
        x = [r[key] for r in rows]
        c = corr['per_teacher_raw'][key]
        assert c['n'] == len(rows)
        assert c['pearson_r'] == pytest.approx(stats.pearsonr(x, y)[0], abs=1e-9)
        assert c['pearson_p'] == pytest.approx(stats.pearsonr(x, y)[1], abs=1e-9)
        assert c['spearman_rho'] == pytest.approx(stats.spearmanr(x, y)[0], abs=1e-9)
        # pooled: the calibrated teachers' *_scaled metrics vs the calibrated-teacher students
        xs = x + [r[key if key == 'acc' else key + '_scaled'] for r in rows]
        ys = y + [r['student_acc_cal'] for r in rows]
        assert corr['per_teacher_pooled'][key]['pearson_r'] == pytest.approx(
            stats.pearsonr(xs, ys)[0], abs=1e-9)
        assert corr['per_teacher_pooled'][key]['spearman_rho'] == pytest.approx(
            stats.spearmanr(xs, ys)[0], abs=1e-9)
        # per seed, and their mean over seeds
        per_seed = []
        for seed in results['config']['seeds']:
            rs = [r for r in runs if r['seed'] == seed]
            r_ = stats.pearsonr([r[key] for r in rs], [r['student_acc_raw'] for r in rs])[0]
            assert corr['per_seed'][str(seed)][key]['pearson_r'] == pytest.approx(r_, abs=1e-9)
            per_seed.append(r_)
        assert corr['per_seed_summary'][key]['pearson_r']['mean'] == pytest.approx(
            np.mean(per_seed), abs=1e-9)
    log_t = [math.log(r['t_cal']) for r in runs]
    gains = [r['student_acc_cal'] - r['student_acc_raw'] for r in runs]
    assert corr['gain_vs_log_t_cal']['pearson_r'] == pytest.approx(
        stats.pearsonr(log_t, gains)[0], abs=1e-9)
    assert corr['gain_vs_log_t_cal']['spearman_rho'] == pytest.approx(
        stats.spearmanr(log_t, gains)[0], abs=1e-9)
    assert corr['teacher_ace_vs_acc']['pearson_r'] == pytest.approx(
        stats.pearsonr([r['ace'] for r in rows], [r['acc'] for r in rows])[0], abs=1e-9)


def test_gains_match_recomputation(quick_run):
    _, results, _ = quick_run
    runs, seeds = results['runs'], results['config']['seeds']
    for group in ('all', 'over', 'under'):
        sel = [r for r in runs if group == 'all' or (r['t_cal'] > 1) == (group == 'over')]
        per_seed = [np.mean([r['student_acc_cal'] - r['student_acc_raw'] for r in sel
                             if r['seed'] == s]) for s in seeds
                    if any(r['seed'] == s for r in sel)]
        g = results['gain'][group]
        assert g['pairs'] == len(sel)
        assert g['per_seed'] == pytest.approx(per_seed, abs=1e-12)
        if len(per_seed) >= 2:
            s = g['over_seeds']
            sd = np.std(per_seed, ddof=1)
            half = stats.t.ppf(0.975, len(per_seed) - 1) * sd / math.sqrt(len(per_seed))
            assert s['mean'] == pytest.approx(np.mean(per_seed), abs=1e-12)
            assert s['std'] == pytest.approx(sd, abs=1e-12)
            assert s['ci95_low'] == pytest.approx(np.mean(per_seed) - half, abs=1e-12)
            assert s['ci95_high'] == pytest.approx(np.mean(per_seed) + half, abs=1e-12)
    base = [b['student_acc'] for b in results['baseline']]
    assert results['baseline_summary']['mean'] == pytest.approx(np.mean(base), abs=1e-12)


def test_teacher_metrics_recomputed_from_saved_logits(quick_run):
    from torchmetrics.functional.classification import multiclass_calibration_error

    from mmkdcal.calibration import ace, ece, ece_over_under
    _, results, logits = quick_run
    y_test, y_cal = torch.from_numpy(logits['y_test']), torch.from_numpy(logits['y_cal'])
    n_bins = results['config']['n_bins']
    for r in results['runs']:
        z = torch.from_numpy(logits[f"s{r['seed']}/{r['teacher']}/test"]).double()
        zc = torch.from_numpy(logits[f"s{r['seed']}/{r['teacher']}/cal"]).double()
        assert r['acc'] == pytest.approx(float((z.argmax(1) == y_test).double().mean()))
        for suffix, temp in (('', 1.0), ('_scaled', r['t_cal'])):
            p = torch.softmax(z / temp, dim=1)
            # the project's own metrics ...
            assert r['ece' + suffix] == pytest.approx(ece(p, y_test, n_bins), abs=1e-9)
            assert r['ace' + suffix] == pytest.approx(ace(p, y_test, n_bins), abs=1e-9)
            e_o, e_u = ece_over_under(p, y_test, n_bins)
            assert (r['ece_o' + suffix], r['ece_u' + suffix]) == pytest.approx((e_o, e_u),
                                                                              abs=1e-9)
            # ... and independent references
            tm = float(multiclass_calibration_error(p.float(), y_test, 10, n_bins, norm='l1'))
            assert r['ece' + suffix] == pytest.approx(tm, abs=1e-5)
            assert r['ace' + suffix] == pytest.approx(_numpy_ace(p.numpy(), y_test.numpy(),
                                                                 n_bins), abs=1e-9)
            assert r['ece_o' + suffix] + r['ece_u' + suffix] == pytest.approx(
                r['ece' + suffix], abs=1e-9)
            assert r['nll' + suffix] == pytest.approx(float(F.cross_entropy(z / temp, y_test)),
                                                      abs=1e-9)
            assert r['nll_cal' + suffix] == pytest.approx(
                float(F.cross_entropy(zc / temp, y_cal)), abs=1e-9)


def test_fitted_temperature_lowers_and_minimises_calibration_nll(quick_run):
    _, results, logits = quick_run
    y_cal = torch.from_numpy(logits['y_cal'])
    for r in results['runs']:
        zc = torch.from_numpy(logits[f"s{r['seed']}/{r['teacher']}/cal"]).double()
        t = r['t_cal']
        assert t > 0 and abs(t - 1) > 1e-3  # a real fit, not the identity
        at = float(F.cross_entropy(zc / t, y_cal))
        assert at < float(F.cross_entropy(zc, y_cal)), r['teacher']
        assert r['nll_cal_scaled'] < r['nll_cal']
        for factor in (0.98, 1.02):  # T_cal is the minimiser: any nearby T is worse
            assert at <= float(F.cross_entropy(zc / (t * factor), y_cal)) + 1e-7


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
    d = tcs.load_digit_splits(n_cal=200, n_test=300, split_seed=3)
    assert (d['x_cal'].shape[0], d['x_test'].shape[0], d['x_train'].shape[0]) == (200, 300, 1297)
    rows = {tuple(x.flatten().tolist()) for k in ('x_train', 'x_cal', 'x_test') for x in d[k]}
    assert len(rows) >= 1797 - 10  # the digits hold a handful of duplicate scans
    counts = np.bincount(d['y_test'].numpy(), minlength=10)
    assert counts.min() >= 28 and counts.max() <= 31  # stratified: ~30 per class
    assert float(d['x_train'].max()) == 1.0 and float(d['x_train'].min()) == 0.0
    again = tcs.load_digit_splits(n_cal=200, n_test=300, split_seed=3)
    assert torch.equal(again['y_test'], d['y_test'])
    with pytest.raises(ValueError, match='n_cal'):
        tcs.load_digit_splits(n_cal=5)
    with pytest.raises(ValueError, match='n_test'):
        tcs.load_digit_splits(n_cal=900, n_test=900)


def test_shift_augment_moves_a_planted_pixel():
    x = torch.zeros(2, 8, 8)
    x[0, 3, 4] = 1.0
    x[1, 0, 7] = 1.0  # on the border: shifting it out must drop it, not wrap it around
    xa, ya = tcs.shift_augment(x, torch.tensor([5, 7]))
    assert xa.shape == (10, 8, 8) and ya.tolist() == [5, 7] * 5
    where = [tuple(torch.nonzero(xa[i]).flatten().tolist()) for i in range(0, 10, 2)]
    assert where == [(3, 4), (2, 4), (4, 4), (3, 3), (3, 5)]
    border = [int(xa[i].sum()) for i in range(1, 10, 2)]
    assert border == [1, 0, 1, 1, 0]  # up and right push it out
    with pytest.raises(ValueError, match='shift_augment'):
        tcs.shift_augment(torch.zeros(2, 64), torch.zeros(2))


def test_correlation_and_ci_on_hand_cases():
    rows = [dict(ace=a, ece=a, ece_o=a, ece_u=a, nll=a, acc=1 - a, ace_scaled=a / 2,
                 ece_scaled=a / 2, ece_o_scaled=a / 2, ece_u_scaled=a / 2, nll_scaled=a / 2,
                 kd_conf=1 - a, kd_conf_scaled=1 - a / 2,
                 student_acc_raw=0.9 - 2 * a, student_acc_cal=0.9 - 4 * a)
            for a in (0.01, 0.02, 0.05, 0.1)]
    t = tcs.correlation_table(rows)
    assert t['ace']['pearson_r'] == pytest.approx(-1.0)
    assert t['acc']['spearman_rho'] == pytest.approx(1.0)
    pooled = tcs.correlation_table(rows, with_calibrated=True)
    # raw points (a, 0.9 - 2a) and calibrated (a/2, 0.9 - 4a): not collinear, r in (-1, 0)
    xs = [r['ace'] for r in rows] + [r['ace'] / 2 for r in rows]
    ys = [r['student_acc_raw'] for r in rows] + [r['student_acc_cal'] for r in rows]
    assert pooled['ace']['pearson_r'] == pytest.approx(stats.pearsonr(xs, ys)[0])
    assert -1 < pooled['ace']['pearson_r'] < 0
    const = tcs.correlation_table([dict(rows[0], ace=0.3) for _ in range(4)])
    assert const['ace']['pearson_r'] is None  # undefined, reported as None rather than NaN
    ci = tcs._mean_ci([1.0, 2.0, 3.0])
    # mean 2, sd 1, t_{0.975, 2} = 4.302653 -> half-width 4.302653 / sqrt(3) = 2.484138
    assert (ci['mean'], ci['std']) == pytest.approx((2.0, 1.0))
    assert (ci['ci95_low'], ci['ci95_high']) == pytest.approx((2 - 2.484138, 2 + 2.484138),
                                                              abs=1e-5)


def test_teacher_metrics_recovers_a_planted_temperature():
    torch.manual_seed(0)
    n, t_true = 6000, 2.5
    z = torch.randn(2 * n, 10, dtype=torch.float64) * 4
    y = torch.multinomial(torch.softmax(z / t_true, 1), 1).squeeze(1)
    m = tcs.teacher_metrics(z[:n], y[:n], z[n:], y[n:], n_bins=15)
    assert m['t_cal'] == pytest.approx(t_true, rel=0.05)
    assert m['ece_o'] > 5 * m['ece_u']  # logits 2.5x too sharp: over-confident
    assert m['ece_scaled'] < m['ece'] / 3 and m['nll_scaled'] < m['nll']


def test_student_runs_are_paired_and_kd_matters():
    torch.set_num_threads(1)
    from mmkdcal.models.losses import KDLoss
    g = torch.Generator().manual_seed(0)
    x = torch.rand(96, 8, 8, generator=g)
    y = torch.randint(0, 10, (96, ), generator=g)
    t_logits = torch.randn(96, 10, generator=g) * 3
    rec = tcs.TrainRecipe('s', (8, ), epochs=2, batch_size=32)
    base = tcs.train_classifier(rec, x, y, seed=4)
    # zero KD weight: identical initialisation and batches give identical weights
    off = tcs.train_classifier(rec, x, y, seed=4, teacher_logits=t_logits, kd_loss=KDLoss(),
                               ce_weight=1.0, kd_weight=0.0)
    for a, b in zip(base.parameters(), off.parameters()):
        assert torch.equal(a, b)
    on = tcs.train_classifier(rec, x, y, seed=4, teacher_logits=t_logits, kd_loss=KDLoss(),
                              ce_weight=1.0, kd_weight=1.0)
    assert not torch.equal(base[-1].weight, on[-1].weight)
    with pytest.raises(ValueError, match='teacher_logits'):
        tcs.train_classifier(rec, x, y, seed=0, teacher_logits=t_logits)
    with pytest.raises(ValueError, match='teacher_logits'):
        tcs.train_classifier(rec, x, y, seed=0, teacher_logits=t_logits[:5], kd_loss=KDLoss())


def test_recipe_and_config_validation():
    with pytest.raises(ValueError, match='label_smoothing'):
        tcs.TrainRecipe('a', label_smoothing=1.0)
    with pytest.raises(ValueError, match='train_fraction'):
        tcs.TrainRecipe('a', train_fraction=0.0)
    with pytest.raises(ValueError, match='name'):
        tcs.TrainRecipe('a b')
    with pytest.raises(ValueError, match='teachers'):
        tcs.run_study(tcs.StudyConfig(student=tcs.default_student_recipe(True)))
    with pytest.raises(ValueError, match='family'):
        tcs.default_teacher_recipes(family='cifar')
    # the two families differ only in how the over-confident teachers are made
    matched, mixed = tcs.default_teacher_recipes(), tcs.default_teacher_recipes(family='mixed')
    assert all(r.augment for r in matched)
    assert {r.name for r in mixed if not r.augment} == {r.name for r in mixed} - {
        r.name for r in matched}
    with pytest.raises(ValueError, match='kd_weight'):
        tcs.StudyConfig(kd_weight=0.0)
    with pytest.raises(ValueError, match='tau'):
        tcs.StudyConfig(tau=0.0)
    with pytest.raises(TypeError, match='seeds'):
        tcs.StudyConfig(seeds=(0.5, ))
    twice = [tcs.TrainRecipe('a'), tcs.TrainRecipe('a')]
    with pytest.raises(ValueError, match='unique'):
        tcs.run_study(tcs.StudyConfig(teachers=twice, student=tcs.default_student_recipe(True)))


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
