"""The report of the classification teacher-calibration study: a mechanical plain-language
reading of the numbers and the markdown file with the set-up, tables and correlations."""
from typing import Any, Dict, List, Optional

from .teacher_calibration_summary import CORR_METRICS

__all__ = ['reading', 'write_markdown']


def _fmt_r(c: Dict[str, Optional[float]]) -> str:
    if c['pearson_r'] is None:
        return 'r = n/a'
    return (f"Pearson r = {c['pearson_r']:+.2f} (p = {c['pearson_p']:.2g}), "
            f"Spearman rho = {c['spearman_rho']:+.2f} (p = {c['spearman_p']:.2g})")


def _strength(r: Optional[float], p: Optional[float]) -> str:
    if r is None:
        return 'undefined'
    size = 'strong' if abs(r) >= 0.6 else 'moderate' if abs(r) >= 0.3 else 'weak'
    sign = 'negative' if r < 0 else 'positive'
    sig = 'significant at 5%' if p is not None and p < 0.05 else 'not significant at 5%'
    return f'{size} {sign}, {sig}'


def _pct(v: Optional[float], signed: bool = False) -> str:
    if v is None:
        return 'n/a'
    return f'{100 * v:+.2f}' if signed else f'{100 * v:.2f}'


def _ci_text(s: Dict[str, Optional[float]]) -> str:
    if s['mean'] is None:
        return 'no data'
    if s['std'] is None:
        return f"{_pct(s['mean'], True)} points (1 seed: no spread)"
    return (f"{_pct(s['mean'], True)} points (std {_pct(s['std'])}, 95% CI "
            f"[{_pct(s['ci95_low'], True)}, {_pct(s['ci95_high'], True)}], {s['n']} seeds)")


def reading(results: Dict[str, Any]) -> List[str]:
    """Plain-language statements derived mechanically from the summarized numbers.

    Args:
        results: Output of
            :func:`~.teacher_calibration_summary.summarize`.

    Returns:
        list[str]: One statement per finding (correlations, teacher accuracy, gains).
    """
    corr = results['correlations']['per_teacher_raw']
    out = []
    c = corr['ace']
    r_c, p_c = c['pearson_r'], c['pearson_p']
    if r_c is None:
        verdict = 'it is undefined here.'
    elif r_c <= -0.6 and p_c < 0.05:
        verdict = 'this data shows one (same sign).'
    elif r_c > 0 and p_c < 0.05:
        verdict = ('this data shows the opposite sign: teachers with a larger ACE taught better '
                   'students.')
    else:
        verdict = 'this data does not show a strong, significant negative one.'
    out.append(f"Teacher ACE vs student accuracy (raw teachers, one point per teacher): "
               f"{_fmt_r(c)}: {_strength(c['pearson_r'], c['pearson_p'])} (Pearson); "
               f"{_strength(c['spearman_rho'], c['spearman_p'])} (Spearman). The paper reports a "
               f'strong negative correlation; {verdict}')
    a = corr['acc']
    ra = a['pearson_r']
    if ra is not None and r_c is not None:
        better = 'teacher ACE' if abs(r_c) > abs(ra) else 'teacher accuracy'
        out.append(f"Teacher accuracy vs student accuracy: {_fmt_r(a)}. |r| is larger for "
                   f"{better} ({abs(r_c):.2f} for ACE, sign {r_c:+.2f}, vs {abs(ra):.2f} for "
                   'accuracy).')
    conf = results['correlations']['teacher_ace_vs_acc']
    if conf['pearson_r'] is not None:
        if abs(conf['pearson_r']) >= 0.3 or abs(conf['spearman_rho']) >= 0.3:
            out.append(f"Across teachers, ACE and accuracy are themselves correlated "
                       f"({_fmt_r(conf)}), so the two correlations above are not independent "
                       'evidence.')
        else:
            out.append(f"Across teachers, ACE and accuracy are nearly unrelated ({_fmt_r(conf)}),"
                       ' so the family separates the two predictors.')
    o = corr['ece_over']
    out.append(f"Teacher over-confidence ECE_o vs student accuracy: {_fmt_r(o)}: "
               f"{_strength(o['pearson_r'], o['pearson_p'])}. The paper's reading (over-"
               'confidence weakens the KD signal) predicts a negative sign here.')
    for key in ('ece', 'ece_under', 'nll', 'kd_conf'):
        out.append(f"{CORR_METRICS[key]} vs student accuracy: {_fmt_r(corr[key])}.")
    pooled = results['correlations']['per_teacher_pooled']['ace']
    out.append(f"Pooling raw and calibrated teachers ({pooled['n']} points): {_fmt_r(pooled)}.")
    for group, label in (('all', 'all teachers'), ('over', 'over-confident teachers (T_cal > 1)'),
                         ('under', 'under-confident teachers (T_cal < 1)')):
        g = results['gain'][group]
        s = g['over_seeds']
        if s['mean'] is None:
            out.append(f'Gain of calibrating, {label}: no such teacher in any seed.')
            continue
        if s['ci95_low'] is None:
            verdict = 'too few seeds for an interval'
        elif s['std'] == 0:
            verdict = 'the same value in every seed, so the interval is degenerate (no evidence)'
        elif s['ci95_low'] > 0:
            verdict = 'calibrating the teacher helped (the 95% CI excludes 0)'
        elif s['ci95_high'] < 0:
            verdict = 'calibrating the teacher hurt (the 95% CI excludes 0)'
        else:
            verdict = 'no effect distinguishable from seed noise (the 95% CI contains 0)'
        out.append(f"Gain of calibrating, {label}: {_ci_text(s)} over {g['pairs']} (seed, "
                   f"teacher) pairs, {100 * g['frac_positive']:.0f}% of them positive and "
                   f"{100 * g['frac_negative']:.0f}% negative: {verdict}.")
    gt = results['correlations']['gain_vs_log_t_cal']
    out.append(f"Gain of calibrating vs log T_cal over the {gt['n']} (seed, teacher) pairs: "
               f"{_fmt_r(gt)}: {_strength(gt['pearson_r'], gt['pearson_p'])}; a positive value "
               'means calibrating helps more the more over-confident (larger T_cal) the teacher.')
    kd = results['kd_vs_baseline']
    out.append(f"KD from the raw teachers vs the student without KD (mean over teachers): "
               f"{_ci_text(kd)}.")
    return out


def write_markdown(results: Dict[str, Any], path: str, figure: Optional[str] = None) -> str:
    """Write the study report: set-up, teacher and student tables, correlations, reading.

    Args:
        results: Output of
            :func:`~.teacher_calibration_summary.summarize`.
        path: Markdown file to write.
        figure: Figure file name to link (relative to the markdown), if any.

    Returns:
        str: ``path``.
    """
    cfg = results['config']
    st = cfg['student']
    rows = results['per_teacher']
    n_seeds = len(cfg['seeds'])
    sizes = results['split_sizes']
    lines = [
        '# Teacher calibration vs. student accuracy (sklearn digits)', '',
        f"- Data: scikit-learn digits (1797 real 8x8 scans), stratified split (seed "
        f"{cfg['split_seed']}): train {sizes['train']} ({sizes['train_augmented']} with the four "
        f"1-pixel shifts), calibration {sizes['cal']} (only to fit T_cal), test {sizes['test']}.",
        f"- Teachers: {len(rows)} MLP recipes (below; family "
        f"`{results.get('family', 'custom')}`); T_cal fitted by NLL (L-BFGS on log T) on "
        'the calibration split; metrics on the test split, ECE/ACE with '
        f"{cfg['n_bins']} bins (equal-width / equal-mass per class).",
        f"- Student: MLP 64-{'-'.join(map(str, st['hidden']))}-10, {st['epochs']} epochs, AdamW "
        f"lr {st['lr']} cosine, batch {st['batch_size']}; KD loss = {cfg['ce_weight']} CE + "
        f"{cfg['kd_weight']} KD (tau = {cfg['tau']}, `mmkdcal.models.losses.KDLoss`), teacher "
        'logits raw or divided by T_cal; same initialisation and batches for both.',
        f"- Seeds: {cfg['seeds']} (each seed retrains every teacher and student). Machine: "
        f"{results['machine']}. Wall time: {results['wall_time_s']:.0f} s.",
    ]
    if results.get('command'):
        lines.append(f"- Command: `{results['command']}`")
    lines.append('')
    if figure:
        lines += [f'![teacher calibration study]({figure})', '']
    lines += ['## Teachers (test split, mean over seeds)', '',
              '| # | teacher | recipe | acc % | ECE | ACE | ECE_o | ECE_u | NLL | T_cal | '
              'ECE after | ACE after | NLL after | direction |',
              '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|']
    notes = {t['name']: t['note'] for t in cfg['teachers']}
    for i, r in enumerate(rows, 1):
        lines.append(
            f"| {i} | {r['teacher']} | {notes.get(r['teacher'], '')} | {_pct(r['acc'])} | "
            f"{r['ece']:.4f} | {r['ace']:.4f} | {r['ece_over']:.4f} | {r['ece_under']:.4f} | "
            f"{r['nll']:.3f} | {r['t_cal']:.3f} | {r['ece_scaled']:.4f} | "
            f"{r['ace_scaled']:.4f} | {r['nll_scaled']:.3f} | {r['direction']} |")
    base = results['baseline_summary']
    lines += ['', '## Students (test accuracy %, mean +- std over seeds)', '',
              f"Student without KD: {_pct(base['mean'])}"
              + (f" +- {_pct(base['std'])}" if base['std'] is not None else '') + '.', '',
              'Teacher on the KD images (the student\'s training images): accuracy and mean '
              'top-label confidence of softmax(z), raw and divided by T_cal.', '',
              '| # | teacher | KD-image acc % | KD-image conf raw / calibrated | student, raw '
              'teacher | student, calibrated teacher | gain (points) |',
              '|---|---|---|---|---|---|---|']
    for i, r in enumerate(rows, 1):
        lines.append(f"| {i} | {r['teacher']} | {_pct(r['kd_acc'])} | {r['kd_conf']:.3f} / "
                     f"{r['kd_conf_scaled']:.3f} | {_pct(r['student_acc_raw'])} +- "
                     f"{_pct(r['student_acc_raw_std'])} | {_pct(r['student_acc_cal'])} +- "
                     f"{_pct(r['student_acc_cal_std'])} | {_pct(r['gain'], True)} +- "
                     f"{_pct(r['gain_std'])} |")
    lines += ['', '## Correlation with student accuracy', '',
              'Per-teacher means over seeds (one point per raw teacher, n = '
              f"{len(rows)}); pooled adds the calibrated teachers (n = {2 * len(rows)}); per-seed: "
              f'the raw correlation within each seed, mean +- std over the {n_seeds} seed(s).', '',
              '| teacher metric | Pearson r (p) | Spearman rho (p) | pooled Pearson r (p) | '
              'pooled Spearman rho (p) | per-seed Pearson r | per-seed Spearman rho |',
              '|---|---|---|---|---|---|---|']

    def rp(c: Dict[str, Any], k: str, pk: str) -> str:
        return 'n/a' if c[k] is None else f'{c[k]:+.3f} ({c[pk]:.2g})'

    def ms(s: Dict[str, Any]) -> str:
        if s['mean'] is None:
            return 'n/a'
        return f"{s['mean']:+.3f}" + (f" +- {s['std']:.3f}" if s['std'] is not None else '')

    corr = results['correlations']
    for key, label in CORR_METRICS.items():
        a, b, s = (corr['per_teacher_raw'][key], corr['per_teacher_pooled'][key],
                   corr['per_seed_summary'][key])
        lines.append(f"| {label} | {rp(a, 'pearson_r', 'pearson_p')} | "
                     f"{rp(a, 'spearman_rho', 'spearman_p')} | {rp(b, 'pearson_r', 'pearson_p')}"
                     f" | {rp(b, 'spearman_rho', 'spearman_p')} | {ms(s['pearson_r'])} | "
                     f"{ms(s['spearman_rho'])} |")
    lines += ['', '## Gain of calibrating the teacher (student accuracy, calibrated - raw)', '',
              '| teachers | mean (points) | std over seeds | 95% CI | pairs | positive | '
              'negative |', '|---|---|---|---|---|---|---|']
    for group, label in (('all', 'all'), ('over', 'over-confident (T_cal > 1)'),
                         ('under', 'under-confident (T_cal < 1)')):
        g = results['gain'][group]
        s = g['over_seeds']
        if s['mean'] is None:
            lines.append(f'| {label} | n/a | n/a | n/a | 0 | n/a | n/a |')
            continue
        ci = ('n/a' if s['ci95_low'] is None else
              f"[{_pct(s['ci95_low'], True)}, {_pct(s['ci95_high'], True)}]")
        lines.append(f"| {label} | {_pct(s['mean'], True)} | "
                     f"{'n/a' if s['std'] is None else _pct(s['std'])} | {ci} | {g['pairs']} | "
                     f"{100 * g['frac_positive']:.0f}% | {100 * g['frac_negative']:.0f}% |")
    lines += ['', 'The mean and its spread are over seeds: for each seed, the mean gain of the '
              "group's (teacher, seed) pairs; a teacher's group follows its own T_cal in that "
              'seed.', '', '## Reading', '']
    lines += [f'- {s}' for s in reading(results)]
    lines.append('')
    with open(path, 'w') as f:
        f.write('\n'.join(lines))
    return path
