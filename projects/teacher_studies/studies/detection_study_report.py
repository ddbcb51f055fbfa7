"""The report of the detection teacher-calibration study (``detection_teacher_study.md``):
set-up, tables, figures, a mechanical plain-language reading and where it disagrees with the
paper, the machine and the wall time."""
from typing import Any, Dict, List, Optional, Sequence

from .detection_study_summary import CORRELATION_SETS, GAIN_PREDICTORS, TEACHER_METRICS

__all__ = ['reading', 'write_markdown']


def _f(v: Optional[float], fmt: str = '.4f') -> str:
    return 'n/a' if v is None else format(v, fmt)


def _ci(low: Optional[float], high: Optional[float], fmt: str = '+.3f') -> str:
    return 'n/a' if low is None else f'[{format(low, fmt)}, {format(high, fmt)}]'


def _corr_cell(c: Dict[str, Any]) -> str:
    if c['pearson_r'] is None:
        return 'n/a | n/a'
    return (f"{c['pearson_r']:+.2f} {_ci(c['pearson_ci95_low'], c['pearson_ci95_high'], '+.2f')}"
            f" (p {c['pearson_p']:.2g}) | {c['spearman_rho']:+.2f} "
            f"{_ci(c['spearman_ci95_low'], c['spearman_ci95_high'], '+.2f')}")


def _verdict(c: Dict[str, Any]) -> str:
    """Sign of a correlation as its bootstrap interval of Pearson r and Spearman rho allows."""
    if c['pearson_r'] is None or c['pearson_ci95_low'] is None:
        return 'undefined'
    lows, highs = (c['pearson_ci95_low'], c['spearman_ci95_low']), (c['pearson_ci95_high'],
                                                                    c['spearman_ci95_high'])
    if max(highs) < 0:
        return 'negative (both 95% intervals below 0)'
    if min(lows) > 0:
        return 'positive (both 95% intervals above 0)'
    if highs[0] < 0 or highs[1] < 0:
        return 'negative by one coefficient only (the other interval contains 0)'
    if lows[0] > 0 or lows[1] > 0:
        return 'positive by one coefficient only (the other interval contains 0)'
    return 'not distinguishable from 0 (both 95% intervals contain 0)'


def _hours(seconds: float) -> str:
    return f'{seconds / 3600:.2f} h' if seconds >= 3600 else f'{seconds / 60:.1f} min'


def reading(results: Dict[str, Any]) -> List[str]:
    """Plain-language statements derived mechanically from the summarised numbers.

    Args:
        results: Output of ``summarize``.

    Returns:
        list[str]: One statement per finding.
    """
    out = []
    corr = results['correlations']
    rows = results['teacher_table']
    temps = [r['t_nll'] for r in rows]
    n_over = sum(r['direction'] == 'over' for r in rows)
    n_over_below = sum(r['direction'] == 'over' and r['t_nll'] < 1 for r in rows)
    out.append(f'Direction of miscalibration: {n_over} of {len(rows)} teachers are '
               'over-confident on the calib split (mean score above precision: D-ECE\'s '
               f'over-confident part the larger) and {len(rows) - n_over} under-confident; '
               f'{n_over_below} of the {n_over} over-confident ones are fitted a T (NLL) '
               f'below 1 (T ranges from {min(temps):.3f} to {max(temps):.3f}). For sigmoid '
               'scores T < 1 is not a sign of under-confidence: dividing a logit by T < 1 '
               'lowers every score below 0.5 and raises every score above it, so it corrects '
               'over-confident low-score detections.')
    if 'kd' in corr:
        c = corr['kd']['metrics']['dece']
        v = _verdict(c)
        paper = ('agrees with the paper\'s classification finding (more calibration error, a '
                 'weaker student)' if v.startswith('negative (both') else
                 'is the opposite of the paper\'s classification finding' if
                 v.startswith('positive (both') else
                 'does not confirm the paper\'s strong negative correlation')
        out.append(f"Teacher D-ECE vs KD student mAP over all {c['n']} teachers: Pearson r = "
                   f"{c['pearson_r']:+.2f}, Spearman rho = {c['spearman_rho']:+.2f}: {v}. This "
                   f'{paper}.' if c['pearson_r'] is not None else
                   'Teacher D-ECE vs KD student mAP: undefined.')
        m = corr['kd']['metrics']['map']
        if m['pearson_r'] is not None and c['pearson_r'] is not None:
            better = 'teacher mAP' if abs(m['pearson_r']) > abs(c['pearson_r']) else \
                'teacher D-ECE'
            out.append(f"Teacher mAP vs KD student mAP: r = {m['pearson_r']:+.2f}, rho = "
                       f"{m['spearman_rho']:+.2f} ({_verdict(m)}); |r| is larger for {better}.")
        for key in ('dece_over', 'dece_under', 't_nll'):
            k = corr['kd']['metrics'][key]
            out.append(f"{TEACHER_METRICS[key]} vs KD student mAP: "
                       + (f"r = {k['pearson_r']:+.2f}, rho = {k['spearman_rho']:+.2f} "
                          f'({_verdict(k)}).' if k['pearson_r'] is not None else 'undefined.'))
    for key in ('kd_vs_floor', 'kd_gfl'):
        if key in corr:
            c = corr[key]['metrics']['dece']
            out.append(f"{CORRELATION_SETS[key][0]}, against teacher D-ECE: "
                       + (f"r = {c['pearson_r']:+.2f}, rho = {c['spearman_rho']:+.2f} "
                          f'({_verdict(c)}).' if c['pearson_r'] is not None else 'undefined.'))
    g = results['gain']['all']
    if g['mean'] is not None:
        sign = ('helped' if g['ci95_low'] is not None and g['ci95_low'] > 0 else
                'hurt' if g['ci95_high'] is not None and g['ci95_high'] < 0 else
                'had no effect distinguishable from the spread between teachers')
        out.append(f"Gain of calibrating (KD+cal - KD, mean over {g['n']} teachers): "
                   f"{g['mean']:+.4f} mAP, bootstrap 95% CI "
                   f"{_ci(g['ci95_low'], g['ci95_high'], '+.4f')}: calibrating {sign}; "
                   f"{g['positive']} of {g['n']} teachers gained, "
                   f"{g['ci_excludes_zero_positive']} with a per-teacher 95% interval above 0 "
                   f"and {g['ci_excludes_zero_negative']} below 0. The paper reports that "
                   'KD + calibration beats KD on detection.')
    for group, label in (('over', 'over-confident'), ('under', 'under-confident')):
        gg = results['gain'][group]
        out.append(f'Gain for the {label} teachers: ' + (
            f"{gg['mean']:+.4f} over {gg['n']} teacher(s), 95% CI "
            f"{_ci(gg['ci95_low'], gg['ci95_high'], '+.4f')}." if gg['mean'] is not None
            else 'no such teacher.'))
    gc = results['gain_correlations']
    if gc:
        c = gc['dece_signed']
        out.append('Gain vs signed miscalibration, D-ECE over - under (does the gain depend on '
                   'the direction?): '
                   + (f"r = {c['pearson_r']:+.2f}, rho = {c['spearman_rho']:+.2f} "
                      f'({_verdict(c)}); a positive sign means calibrating helps the more '
                      'over-confident teachers more.' if c['pearson_r'] is not None
                      else 'undefined.'))
        c = gc['log_t_nll']
        out.append('Gain vs log T (NLL): '
                   + (f"r = {c['pearson_r']:+.2f}, rho = {c['spearman_rho']:+.2f} "
                      f'({_verdict(c)}); a negative sign means calibrating helps more the '
                      'teachers that need the stronger sharpening.' if c['pearson_r'] is not None
                      else 'undefined.'))
    out += _calibrator_reading(results)
    ob = results['objectives']
    held = ob['heldout']
    best = min(held, key=lambda o: held[o]['mean_dece_val'])
    out.append('Temperature objective, calibration on the held-out val split (mean D-ECE after '
               'T over all teachers): ' + ', '.join(f"{o} {h['mean_dece_val']:.4f}"
                                                    for o, h in held.items())
               + f'; lowest: {best}.')
    if ob['teachers']:
        diffs = '; '.join(
            f"{o} - nll {d['mean']:+.4f} mAP, 95% CI {_ci(d['ci95_low'], d['ci95_high'], '+.4f')}"
            f" ({d['pairs']} pairs)" for o, d in ob['vs_nll'].items() if d['mean'] is not None)
        out.append(f"Temperature objective, KD students of the {len(ob['teachers'])} most "
                   f"miscalibrated teachers ({', '.join(c['teacher'] for c in ob['teachers'])}): "
                   f"{diffs}. Decision: {ob['decision']}. The paper calibrates by ACE.")
    return out


def _calibrator_reading(results: Dict[str, Any]) -> List[str]:
    """Statements on the calibrators (both arms) and the default they imply, checked against
    the hook's own default."""
    import inspect

    from mmkdcal.engine.hooks import TeacherCalibrationHook

    out = []
    arms = [(k, results[k]) for k in ('calibrator_comparison', 'long_arm') if k in results]
    for key, comp in arms:
        label = 'main arm' if key == 'calibrator_comparison' else 'long arm'
        n = len(comp['teachers'])
        rk = comp['ranking']
        for group in ('all', 'under'):
            g = rk[group]
            if g['best'] is None:
                continue
            means = ', '.join(f"{c} {g[c]['mean']:+.4f}" for c in g
                              if c != 'best' and g[c]['mean'] is not None)
            out.append(f"Calibrators, {label} ({n} teachers, {group}): largest mean gain over "
                       f"raw KD: {g['best']} ({means}).")
        under = rk['under']
        if under['best'] is not None and under[under['best']]['mean'] < 0:
            out.append(f'Calibrators, {label}: every calibrator lowered the student of the '
                       'under-confident teachers; distil those raw.')
        ev = comp['error_vs_student']['rho']
        if ev['mean'] is not None:
            out.append(f"Calibrators, {label}: over one teacher's calibrators, lower val LaECE "
                       f"went with the better student by Spearman rho {ev['mean']:+.2f} "
                       f"[{ev['ci95_low']:+.2f}, {ev['ci95_high']:+.2f}] on average"
                       + ('; this supports' if ev['ci95_high'] < 0 else
                          '; this does not support')
                       + ' "the better-calibrated teacher teaches better" across calibrators.')
        av = comp['auto_vs_temperature']
        out.append(f'Calibrators, {label}: auto gave a weaker student than temperature for '
                   f"{len(av['teachers_lost'])} of {len(av['teachers'])} teachers.")
    if arms:
        implied = {k: c['versus_temperature']['default'] for k, c in arms}
        main = implied.get('calibrator_comparison', next(iter(implied.values())))
        default = inspect.signature(TeacherCalibrationHook).parameters['calibrator'].default
        out.append('Default calibrator: the main arm implies ' + main
                   + (f", the long arm {implied['long_arm']}" if 'long_arm' in implied else '')
                   + ' (a calibrator replaces temperature only where its gain over it has a '
                   'bootstrap interval above 0); where they differ the main arm, with more '
                   f"teachers, decides. The hook's default is calibrator='{default}'"
                   + (', as the data imply.' if default == main else
                      f', which the data do not support: it should be {main}.'))
    return out


def _calibrator_section(comp: Dict[str, Any], title: str) -> List[str]:
    """The calibrator comparison's tables (``calibrator_comparison`` of the summary)."""
    cals = [c for c in ('temperature', 'class_temperature', 'platt', 'isotonic', 'auto')
            if any(c in r['arms'] for r in comp['teachers'])]
    lines = [f'## {title}', '']
    if 'gfl_floor' in comp:
        g = comp['gfl_floor']
        lines += [f"No-KD GFL student: {_f(g['mean'])} (reached 0.30: {g['reached_030']}).", '']
    lines += ['Student val mAP (mean over seeds; gain over raw KD in brackets).', '',
              '| teacher | dir. | auto chose | no KD | raw KD | '
              + ' | '.join(cals) + ' |', '|---|---|---|---|---|' + '---|' * len(cals)]
    for r in comp['teachers']:
        cells = [f"{_f(r['arms'][c]['mean'])} ({_f(r['arms'][c]['gain']['mean'], '+.4f')})"
                 if c in r['arms'] else 'n/a' for c in cals]
        lines.append(f"| {r['teacher']} | {r['direction']} | {r['auto_choice']} | "
                     f"{_f(r['floor']['mean'])} | {_f(r['raw']['mean'])} | "
                     + ' | '.join(cells) + ' |')
    lines += ['', 'Calibration (D-ECE / LaECE): calib before; after on calib, on the fitting '
              'half, on the held-out half, on val.', '',
              '| teacher | calibrator | calib before | calib after | fit half after | '
              'held-out half after | val after |', '|---|---|---|---|---|---|---|']
    for r in comp['teachers']:
        for c in cals:
            if c not in r['arms']:
                continue
            v = r['arms'][c]['calibration']
            cell = [f"{_f(v[f'dece_{k}'])} / {_f(v[f'laece_{k}'])}" for k in (
                'calib_before', 'calib_after', 'fit_after', 'heldout_after', 'val_after')]
            lines.append(f"| {r['teacher']} | {c} | " + ' | '.join(cell) + ' |')
    lines += ['', 'Mean gain over raw KD per calibrator (bootstrap 95% CI over teachers; '
              'best: teachers where it gives the best student).', '',
              '| teachers | ' + ' | '.join(cals) + ' | best |', '|---|' + '---|' * (len(cals) + 1)]
    for group, g in comp['ranking'].items():
        lines.append(f'| {group} | ' + ' | '.join(
            f"{_f(g[c]['mean'], '+.4f')} {_ci(g[c]['ci95_low'], g[c]['ci95_high'], '+.4f')} "
            f"(best {g[c]['best_count']})" for c in cals) + f" | {g['best']} |")
    lines += ['', '| arm | teacher metric | vs student mAP | vs gain over raw KD |',
              '|---|---|---|---|']
    for arm, preds in comp['correlations'].items():
        for pred, ys in preds.items():
            lines.append(f'| {arm} | {pred} | '
                         + (' | '.join(_corr_cell(ys[y]).split(' | ')[0] if y in ys else 'n/a'
                                       for y in ('map', 'gain'))) + ' |')
    vt = comp['versus_temperature']
    lines += ['', 'Each calibrator minus temperature (mean gain, paired by teacher; bootstrap '
              '95% CI over teachers): ' + '; '.join(
                  f"{c} {_f(v['mean'], '+.4f')} {_ci(v['ci95_low'], v['ci95_high'], '+.4f')}"
                  for c, v in vt.items() if c != 'default')
              + f". Default it implies: **{vt['default']}** (a calibrator replaces "
              'temperature only where its interval lies above 0).']
    ev = comp['error_vs_student']
    rho = ev['rho']
    lines += ['', f"Lower teacher error, better student? Per teacher, Spearman rho between "
              f"{ev['metric']} and the student's mAP over its calibrators: mean "
              f"{_f(rho['mean'], '+.2f')} {_ci(rho['ci95_low'], rho['ci95_high'], '+.2f')} over "
              f"{rho['n']} teachers (negative: the better-calibrated teacher teaches better); "
              f"the calibrator of lowest error gave the best student for "
              f"{len(ev['lowest_error_best'])} of {ev['teachers']} teachers."]
    av = comp['auto_vs_temperature']
    lines += ['', f"auto vs temperature (paired seeds): auto loses on average for "
              f"{av['teachers_lost'] or 'no teacher'}; with the 95% interval below 0 for "
              f"{av['teachers_lost_ci'] or 'no teacher'}.", '']
    return lines


def write_markdown(results: Dict[str, Any], path: str,
                   figures: Sequence[str] = ()) -> str:
    """Write the study report.

    Args:
        results: Output of ``summarize``.
        path: Markdown file.
        figures: The two PNGs (D-ECE vs student, gain), as linked from the markdown.

    Returns:
        str: ``path``.
    """
    cfg = results['config']
    rows = results['teacher_table']
    quick = cfg['mode'] == 'quick'
    teachers = {t['name']: t for t in results['teachers']}
    invocations = results.get('invocations') or [dict(wall_s=results['wall_time_s'])]
    wall = sum(i['wall_s'] for i in invocations)
    lines = ['# Detection teacher-calibration study (DigitsDet)', '']
    if quick:
        lines += ['**Quick mode: a test-sized run (tiny data and schedules). Its numbers check '
                  'the machinery, they are not results.**', '']
    lines += [
        'When does a calibrated teacher teach a detector better? Kim et al. (IEEE Access 2025) '
        'find on classification that a teacher\'s calibration error predicts its student\'s '
        'accuracy (a strong negative correlation) and that temperature-scaling the teacher '
        'before KD helps; for detection they show only that KD + calibration beats KD. This '
        'study measures the detection version of the correlation on DigitsDet, with the '
        'project\'s own tools.', '',
        '## Reproduce', '',
        '```bash',
        results.get('command', 'python projects/teacher_studies/run_detection_study.py'),
        'python projects/teacher_studies/run_detection_study.py --replot --publish   '
        '# rewrite this file from results.json',
        '```', '',
        'Outputs (work dir): `results.json` (every run and every statistic), this report, '
        'the two figures, per-teacher `measure/<teacher>/detections.npz` (the matched '
        'detections every calibration number is computed from) and the logs. Finished runs are '
        'reused when the command is run again.', '']
    if not quick and len(cfg['seeds']) < 3:  # quick mode's one seed is its own size
        lines += [f"**{len(cfg['seeds'])} student seed(s), not the command's default 3** (the "
                  'machine and the wall time are under Set-up). A per-teacher interval over '
                  'seeds needs at least two, so the intervals below are over teachers '
                  '(bootstrap) only.', '']
    lines += [
        '## Set-up', '',
        "- Data: DigitsDet (`mmkdcal.datasets.build_digits_det`"
        + (f", {cfg['data']}" if cfg['data'] else ', default build: train 3000 / calib 500 / '
           'val 500 images') + '). Teachers are measured on the calib split; students are '
        'evaluated on val.',
        f"- Teachers: {len(rows)}, trained once (seed 0) with `tools/train.py` from the stock "
        f"demo configs, {cfg['teacher_iters']} iterations of batch "
        f"{cfg['batch'] or 16} unless the table says otherwise (AdamW, warm-up, cosine).",
        f"- Calibration (calib split): the teacher's detections scoring at least "
        f"{cfg['score_thr']} (after NMS), matched one-to-one to ground truth at IoU 0.5 "
        "(`mmkdcal.engine.collect_calibration_data`, as `tools/calibrate.py`); D-ECE with "
        f"{cfg['n_bins']} confidence bins, split into its over-confident part (bins whose mean "
        'score exceeds their precision) and its under-confident part; one temperature fitted '
        'per objective (NLL, ACE, ECE; `mmkdcal.engine.fit_and_report`). The direction of '
        'miscalibration is the sign of D-ECE over - under, which equals the mean score minus '
        'the precision of the detections (over-confident: positive). It is not the side of 1 '
        'the temperature falls on: a sigmoid score below 0.5 falls when its logit is divided '
        'by T < 1.',
        '- Students: one config per head family, since a KD student\'s head must have its '
        'teacher\'s layout: GFL: `configs/demo/gfl_r18w16_digits.py` (KD: '
        '`configs/demo/kd_gfl_r18w16_r18w32_digits.py`), RetinaNet: '
        '`configs/demo/retinanet_r18w16_digits.py` (KD: '
        '`configs/demo/kd_retinanet_r18w16_r18w32_digits.py`); '
        f"{cfg['student_iters']} iterations, seeds {cfg['seeds']}, the same schedule "
        'throughout. KD: `BinaryKDLoss` (beta 1) on the class logits of every location, the '
        'teacher raw (`model.teacher_temperature=1.0`) or divided by its NLL temperature. '
        'The no-KD student of each family and seed is the floor. KD and KD+cal students of a '
        '(teacher, seed) share their initialisation and batches.',
        f"- Objective comparison: on the {cfg['objective_teachers']} teachers with the largest "
        f"D-ECE, students also from the ACE and the ECE temperatures (seeds "
        f"{cfg['objective_seeds']}).",
        f"- Statistics (`projects/teacher_studies/studies/statistics.py`): Pearson r and "
        f"Spearman rho over teachers (one point per teacher: the mean over seeds) with "
        f"percentile-bootstrap 95% intervals ({cfg['n_boot']} resamples of the teachers); "
        f"per-teacher gains with t "
        'intervals over the paired seeds; group means of the gain with bootstrap intervals '
        'over teachers.',
        f"- Machine: {results['machine']}; {results['workers']} single-thread processes at a "
        f"time. Wall time: {_hours(wall)} over {len(invocations)} invocation(s) of the command "
        f"({results['n_runs']} runs, {_hours(results['process_time_s'])} of process time).",
        '']
    lines += ['## Teachers (calib split)', '',
              '| # | teacher | what varies | iters | mAP | mAP50 | D-ECE | over | under | '
              'T (NLL) | T (ACE) | T (ECE) | D-ECE after T (NLL) | val mAP |',
              '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|']
    for i, r in enumerate(rows, 1):
        t = teachers[r['teacher']]
        it = (f"{t['trained_iters']} of {t['scheduled_iters']}"
              if t['trained_iters'] != t['scheduled_iters'] else str(t['trained_iters']))
        lines.append(f"| {i} | {r['teacher']} | {r['note']} | {it} | {r['map']:.4f} | "
                     f"{r['map50']:.4f} | {r['dece']:.4f} | {r['dece_over']:.4f} | "
                     f"{r['dece_under']:.4f} | {r['t_nll']:.3f} | {r['t_ace']:.3f} | "
                     f"{r['t_ece']:.3f} | {r['dece_cal_nll']:.4f} | {r['val_map']:.4f} |")
    floors = results['floors']
    lines += ['', '## Students (val mAP, mean ± std over seeds)', '',
              'No-KD floor: ' + '; '.join(
                  f"{f}: {_f(v['mean'])} ± {_f(v['std'])}" for f, v in floors.items()) + '.', '',
              '| # | teacher | KD | KD+cal | gain (KD+cal - KD) | 95% CI (t, seeds) | '
              'per seed | KD - floor |',
              '|---|---|---|---|---|---|---|---|']
    for i, r in enumerate(rows, 1):
        g = r['gain']
        per_seed = ', '.join(f'{v:+.3f}' for _, v in sorted(r['gains'].items()))
        lines.append(f"| {i} | {r['teacher']} | {_f(r['kd_map'])} ± {_f(r['kd_map_std'])} | "
                     f"{_f(r['kd_cal_map'])} ± {_f(r['kd_cal_map_std'])} | "
                     f"{_f(g['mean'], '+.4f')} | {_ci(g['ci95_low'], g['ci95_high'], '+.4f')} | "
                     f"{per_seed} | {_f(r['kd_vs_floor'], '+.4f')} |")
    lines += ['', '## Correlation of teacher metrics with the student', '',
              'Pearson r [bootstrap 95% CI] (p) | Spearman rho [bootstrap 95% CI]; one point per '
              'teacher.', '']
    for key, c in results['correlations'].items():
        lines += [f"**{c['label']}** (n = {len(c['teachers'])})", '',
                  '| teacher metric | Pearson r | Spearman rho |', '|---|---|---|']
        for m, label in TEACHER_METRICS.items():
            lines.append(f'| {label} | {_corr_cell(c["metrics"][m])} |')
        lines.append('')
    g = results['gain']
    lines += ['## Gain of calibrating and the direction of miscalibration', '',
              '| teachers | n | mean gain | bootstrap 95% CI | gained | CI > 0 | CI < 0 |',
              '|---|---|---|---|---|---|---|']
    for group, label in (('all', 'all'), ('over', 'over-confident (over > under)'),
                         ('under', 'under-confident (under > over)')):
        gg = g[group]
        lines.append(f"| {label} | {gg['n']} | {_f(gg['mean'], '+.4f')} | "
                     f"{_ci(gg['ci95_low'], gg['ci95_high'], '+.4f')} | {gg['positive']} | "
                     f"{gg['ci_excludes_zero_positive']} | {gg['ci_excludes_zero_negative']} |")
    if results['gain_correlations']:
        lines += ['', '| gain vs | Pearson r | Spearman rho |', '|---|---|---|']
        for k, label in GAIN_PREDICTORS.items():
            lines.append(f"| {label} | {_corr_cell(results['gain_correlations'][k])} |")
    ob = results['objectives']
    lines += ['', '## Temperature objective: NLL vs ACE vs ECE', '',
              'Held-out calibration (val split, all teachers): mean D-ECE after each '
              'objective\'s T: ' + ', '.join(
                  f"{o} {h['mean_dece_val']:.4f} (lowest for {h['best_count']} teacher(s))"
                  for o, h in ob['heldout'].items()) + '.', '']
    if ob['teachers']:
        objs = list(ob['heldout'])
        lines += ['| teacher | D-ECE | ' + ' | '.join(f'T ({o})' for o in objs) + ' | '
                  + ' | '.join(f'val D-ECE ({o})' for o in objs) + ' | KD | '
                  + ' | '.join(f'KD+cal ({o})' for o in objs) + ' |',
                  '|---|---|' + '---|' * (3 * len(objs) + 1)]
        for c in ob['teachers']:
            lines.append(f"| {c['teacher']} | {c['dece']:.4f} | "
                         + ' | '.join(f"{c[f't_{o}']:.3f}" for o in objs) + ' | '
                         + ' | '.join(f"{c[f'dece_val_{o}']:.4f}" for o in objs)
                         + f" | {_f(c['kd_map']['mean'])} ± {_f(c['kd_map']['std'])} | "
                         + ' | '.join(f"{_f(c[f'map_{o}']['mean'])} ± {_f(c[f'map_{o}']['std'])}"
                                      for o in objs) + ' |')
        lines += ['', 'Paired student differences against NLL (same teacher and seed): '
                  + '; '.join(f"{o} - nll {_f(d['mean'], '+.4f')} "
                              f"{_ci(d['ci95_low'], d['ci95_high'], '+.4f')} ({d['pairs']} "
                              'pairs)' for o, d in ob['vs_nll'].items()) + '.', '',
                  f"**Decision (by the data): {ob['decision']}.**", '']
    for key, title in (('calibrator_comparison', 'Calibrators: students and calibration'),
                       ('long_arm', 'Long schedule arm')):
        if key in results:
            lines += _calibrator_section(results[key], title)
    if len(figures) >= 3:
        lines += [f'![student mAP by calibrator]({figures[2]})', '']
    if len(figures) >= 2:
        lines += ['## Figures', '', f'![teacher D-ECE vs student mAP]({figures[0]})', '',
                  f'![gain of calibrating, sorted by T]({figures[1]})', '']
    lines += ['## Reading', '', *[f'- {s}' for s in reading(results)], '']
    with open(path, 'w') as f:
        f.write('\n'.join(lines))
    return path
