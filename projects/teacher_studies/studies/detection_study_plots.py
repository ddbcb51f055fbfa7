"""The two figures of the detection teacher-calibration study."""
import os
import os.path as osp
from typing import Any, Dict, Optional

__all__ = ['plot_calibrators', 'plot_dece_vs_student', 'plot_gain']

_KD, _KD_CAL = '#1f77b4', '#ff7f0e'
_DIRECTION = dict(over='#d62728', under='#2b6cb0')
_MARKERS = dict(gfl='o', retinanet='s')


def _r_text(c: Optional[Dict[str, Any]]) -> str:
    if not c or c.get('pearson_r') is None:
        return 'r = n/a'
    ci = ('' if c.get('pearson_ci95_low') is None else
          f" [{c['pearson_ci95_low']:+.2f}, {c['pearson_ci95_high']:+.2f}]")
    cs = ('' if c.get('spearman_ci95_low') is None else
          f" [{c['spearman_ci95_low']:+.2f}, {c['spearman_ci95_high']:+.2f}]")
    return f"r = {c['pearson_r']:+.2f}{ci}, rho = {c['spearman_rho']:+.2f}{cs}"


def _save(fig: Any, path: str) -> str:
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    fig.savefig(path)
    return path


def plot_dece_vs_student(results: Dict[str, Any], path: str) -> str:
    """Teacher D-ECE (calib split) vs student mAP (val), one point per teacher.

    Filled markers: the KD student of the raw teacher, at the teacher's D-ECE; hollow markers:
    the KD student of the calibrated teacher, at the D-ECE after its NLL temperature (arrows
    join the two); error bars: std over seeds; marker shape: head family; dashed lines: the
    no-KD student of each family (mean over seeds). The title gives the correlations of
    ``results['correlations']['kd']['metrics']['dece']`` with their bootstrap 95% intervals.

    Args:
        results: Output of ``summarize``.
        path: PNG file to write.

    Returns:
        str: ``path``.
    """
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    rows = results['teacher_table']
    fig = Figure(figsize=(9, 6.5), dpi=110)
    ax = fig.subplots()
    fig.subplots_adjust(left=0.09, right=0.98, top=0.86, bottom=0.1)
    for family, f in results['floors'].items():
        if f['mean'] is not None:
            ax.axhline(f['mean'], color='0.4', ls='--', lw=1,
                       dashes=(5, 3) if family == 'gfl' else (2, 2))
            ax.annotate(f'no KD ({family})', (1.0, f['mean']), xycoords=('axes fraction', 'data'),
                        xytext=(-4, 3), textcoords='offset points', ha='right', fontsize=8,
                        color='0.35')
    for i, r in enumerate(rows, 1):
        m = _MARKERS.get(r['family'], 'D')
        x0, y0 = r['dece'], r['kd_map']
        x1, y1 = r['dece_cal_nll'], r['kd_cal_map']
        if y0 is not None and y1 is not None:
            ax.annotate('', xy=(x1, y1), xytext=(x0, y0),
                        arrowprops=dict(arrowstyle='-|>', color='0.6', lw=0.8, shrinkA=5,
                                        shrinkB=5, mutation_scale=9))
        if y0 is not None:
            ax.errorbar(x0, y0, yerr=r['kd_map_std'] or 0, fmt=m, color=_KD, ms=8, capsize=2,
                        elinewidth=0.8, zorder=3)
            ax.annotate(str(i), (x0, y0), xytext=(5, 4), textcoords='offset points',
                        fontsize=8, color=_KD)
        if y1 is not None:
            ax.errorbar(x1, y1, yerr=r['kd_cal_map_std'] or 0, fmt=m, mfc='white', mec=_KD_CAL,
                        ecolor=_KD_CAL, ms=8, capsize=2, elinewidth=0.8, zorder=3)
    ax.set_xlabel('teacher D-ECE on the calib split (KD: raw teacher; KD+cal: after T)')
    ax.set_ylabel('student bbox mAP on val (mean over seeds, bars: std)')
    handles = [Line2D([], [], marker='o', ls='', color=_KD, label='KD from the raw teacher'),
               Line2D([], [], marker='o', ls='', mfc='white', mec=_KD_CAL,
                      label='KD from the calibrated teacher (T by NLL)'),
               Line2D([], [], marker='o', ls='', color='0.5', label='GFL teacher and student'),
               Line2D([], [], marker='s', ls='', color='0.5',
                      label='RetinaNet teacher and student')]
    ax.legend(handles=handles, fontsize=8, loc='best', framealpha=0.85)
    c = results['correlations'].get('kd', {}).get('metrics', {}).get('dece')
    cg = results['correlations'].get('kd_gfl', {}).get('metrics', {}).get('dece')
    n_seeds = len(results['config']['seeds'])
    fig.suptitle(f'DigitsDet: teacher D-ECE vs KD student mAP ({len(rows)} teachers, '
                 f'{n_seeds} seed(s); numbers: table rows)\nraw teachers, all: {_r_text(c)}'
                 + (f'\nGFL only: {_r_text(cg)}' if cg else ''), fontsize=10)
    return _save(fig, path)


def plot_gain(results: Dict[str, Any], path: str) -> str:
    """Per-teacher gain of calibrating (KD+cal - KD student mAP), teachers sorted by fitted T.

    Bars: mean paired gain over seeds; error bars: its t-based 95% interval over seeds; colour:
    direction of miscalibration (red: over-confident, D-ECE over > under; blue: under-confident).

    Args:
        results: Output of ``summarize``.
        path: PNG file to write.

    Returns:
        str: ``path``.
    """
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    rows = sorted([r for r in results['teacher_table'] if r['gain']['mean'] is not None],
                  key=lambda r: r['t_nll'])
    fig = Figure(figsize=(max(9.0, 0.9 * len(rows) + 3), 6.0), dpi=110)
    ax = fig.subplots()
    fig.subplots_adjust(left=0.11, right=0.98, top=0.86, bottom=0.24)
    xs = list(range(len(rows)))
    for x, r in zip(xs, rows):
        g = r['gain']
        lo = g['mean'] - g['ci95_low'] if g['ci95_low'] is not None else 0
        hi = g['ci95_high'] - g['mean'] if g['ci95_high'] is not None else 0
        ax.bar(x, g['mean'], color=_DIRECTION[r['direction']], alpha=0.85, width=0.7)
        ax.errorbar(x, g['mean'], yerr=[[lo], [hi]], fmt='none', ecolor='0.2', capsize=3,
                    elinewidth=1)
    ax.axhline(0, color='0.3', lw=1)
    ax.set_xticks(xs)
    ax.set_xticklabels([f"{r['teacher']}\nT = {r['t_nll']:.2f}" for r in rows], rotation=45,
                       ha='right', fontsize=8)
    ax.set_ylabel('gain: KD+cal - KD student mAP (val)')
    ax.legend(handles=[Patch(color=_DIRECTION['over'], label='over-confident (D-ECE over > under)'),
                       Patch(color=_DIRECTION['under'],
                             label='under-confident (D-ECE under > over)')],
              fontsize=8, loc='best')
    g = results['gain']['all']
    mean = 'n/a' if g['mean'] is None else f"{g['mean']:+.4f}"
    ci = ('' if g['ci95_low'] is None else
          f" (bootstrap 95% CI over teachers [{g['ci95_low']:+.4f}, {g['ci95_high']:+.4f}])")
    n_seeds = len(results['config']['seeds'])
    fig.suptitle('Gain of calibrating the teacher, teachers sorted by fitted T (NLL)\n'
                 f'mean over teachers {mean}{ci}\nerror bars: 95% t interval over '
                 f'{n_seeds} paired seed(s)', fontsize=10)
    return _save(fig, path)


def plot_calibrators(results: Dict[str, Any], path: str) -> str:
    """Student val mAP per teacher and arm (raw KD, each calibrator), mean over seeds with each
    seed as a dot; dashed: the no-KD student of the teacher's family (mean over seeds).

    Args:
        results: Output of ``summarize`` (``calibrator_comparison``).
        path: PNG file to write.
    """
    import matplotlib.pyplot as plt

    rows = results.get('calibrator_comparison', {}).get('teachers', [])
    arms = ['raw'] + [c for c in ('temperature', 'class_temperature', 'platt', 'isotonic',
                                  'auto') if any(c in r['arms'] for r in rows)]
    fig, ax = plt.subplots(figsize=(max(6, 1.1 * len(rows) + 2), 4.5), layout='constrained')
    width = 0.8 / len(arms)
    for j, arm in enumerate(arms):
        for i, r in enumerate(rows):
            a = r['raw'] if arm == 'raw' else r['arms'].get(arm)
            if not a or a['mean'] is None:
                continue
            x = i - 0.4 + (j + 0.5) * width
            ax.bar(x, a['mean'], width, color=f'C{j}', label=arm if i == 0 else None)
            ax.plot([x] * len(a['maps']), list(a['maps'].values()), 'k.', ms=3)
    for i, r in enumerate(rows):
        if r['floor']['mean'] is not None:
            ax.plot([i - 0.45, i + 0.45], [r['floor']['mean']] * 2, 'k--', lw=1)
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels([f"{r['teacher']}\n({r['direction']})" for r in rows], rotation=45,
                       ha='right', fontsize=7)
    ax.set_ylabel('student val mAP')
    ax.set_title('KD student by teacher calibrator (dashed: no-KD student)')
    ax.legend(fontsize=7, ncol=3)
    out = _save(fig, path)
    plt.close(fig)
    return out
