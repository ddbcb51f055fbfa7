"""The 2x2 figure of the classification teacher-calibration study."""
import os
import os.path as osp
from typing import Any, Dict, Optional

__all__ = ['plot_study']

_COLOURS = dict(over='#d62728', under='#1f77b4')


def _fmt_r_short(c: Dict[str, Optional[float]]) -> str:
    if c['pearson_r'] is None:
        return 'r = n/a'
    return (f"r = {c['pearson_r']:+.2f} (p = {c['pearson_p']:.1g}), "
            f"rho = {c['spearman_rho']:+.2f} (p = {c['spearman_p']:.1g})")


def plot_study(results: Dict[str, Any], path: str) -> str:
    """Draw the 2x2 study figure: teacher ACE / accuracy / ECE_o vs. the student, and the gain.

    Panel (a), like Figure 1 of Kim et al. 2025: teacher ACE (log scale) vs. student test
    accuracy, one filled marker per raw teacher and a hollow one for the same teacher after
    temperature scaling (joined by an arrow), coloured by the direction of miscalibration
    (red: over-confident, ``T_cal > 1``; blue: under-confident), means over seeds with their
    std as error bars; the dashed line and band are the no-KD student. Panel (b): teacher
    accuracy, (c): teacher over-confidence ECE_o, each vs. student accuracy. Panel (d): the
    gain of calibrating (student accuracy with the calibrated minus the raw teacher) against
    ``T_cal``. Correlations in the titles are those of ``results['correlations']`` (raw
    teachers, one point per teacher; (d): all (seed, teacher) pairs).

    Args:
        results: Output of
            :func:`~.teacher_calibration_summary.summarize`.
        path: PNG file to write.

    Returns:
        str: ``path``.
    """
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    def log_axis(axis: Any) -> None:
        axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 3.0, 5.0)))
        axis.set_major_formatter(FuncFormatter(lambda v, _: f'{v:g}'))
        axis.set_minor_formatter(NullFormatter())

    rows = results['per_teacher']
    corr = results['correlations']
    base = results['baseline_summary']
    fig = Figure(figsize=(14, 11), dpi=110)
    axes = fig.subplots(2, 2).ravel()
    fig.subplots_adjust(left=0.065, right=0.985, top=0.9, bottom=0.06, wspace=0.2, hspace=0.3)

    def student_panel(ax: Any, key: str, scale: float, arrows: bool) -> None:
        """Raw (filled) and calibrated (hollow) teachers of metric ``key`` vs. the student."""
        ax.axhline(100 * base['mean'], color='0.35', ls='--', lw=1, zorder=1)
        if base['std'] is not None:
            ax.axhspan(100 * (base['mean'] - base['std']), 100 * (base['mean'] + base['std']),
                       color='0.88', zorder=0)
        cal_key = key if key == 'acc' else key + '_scaled'
        for i, r in enumerate(rows, 1):
            c = _COLOURS[r['direction']]
            x0, y0 = scale * r[key], 100 * r['student_acc_raw']
            x1, y1 = scale * r[cal_key], 100 * r['student_acc_cal']
            if arrows:
                ax.annotate('', xy=(x1, y1), xytext=(x0, y0),
                            arrowprops=dict(arrowstyle='-|>', color=c, alpha=0.45, lw=1,
                                            mutation_scale=11, shrinkA=5, shrinkB=5))
            ax.errorbar(x0, y0, xerr=scale * r[key + '_std'],
                        yerr=100 * r['student_acc_raw_std'], fmt='o', color=c, ms=8, capsize=2,
                        elinewidth=0.8, zorder=3)
            ax.errorbar(x1, y1, xerr=scale * r[cal_key + '_std'],
                        yerr=100 * r['student_acc_cal_std'], fmt='s', mfc='white', mec=c,
                        ecolor=c, ms=7, capsize=2, elinewidth=0.8, zorder=3)
            ax.annotate(str(i), (x0, y0), xytext=(5, 4), textcoords='offset points',
                        fontsize=8, color=c)
        ax.set_ylabel('student test accuracy (%)')

    ax = axes[0]
    student_panel(ax, 'ace', 1.0, arrows=True)
    ax.set_xscale('log')
    log_axis(ax.xaxis)
    ax.set_xlabel('teacher ACE on test (log scale)')
    ax.set_title('(a) teacher ACE vs student accuracy\nraw teachers: '
                 + _fmt_r_short(corr['per_teacher_raw']['ace']), fontsize=10)
    handles = [
        Line2D([], [], marker='o', ls='', color=_COLOURS['over'],
               label='over-confident teacher (T_cal > 1), raw'),
        Line2D([], [], marker='o', ls='', color=_COLOURS['under'],
               label='under-confident teacher (T_cal < 1), raw'),
        Line2D([], [], marker='s', ls='', mfc='white', mec='0.3',
               label='same teacher / T_cal (calibrated)'),
        Line2D([], [], ls='--', color='0.35', label='student without KD (mean +- std)'),
    ]
    ax.legend(handles=handles, fontsize=8, loc='best', framealpha=0.85)
    ax = axes[1]
    student_panel(ax, 'acc', 100.0, arrows=False)
    ax.set_xlabel('teacher test accuracy (%) (unchanged by T_cal)')
    ax.set_title('(b) teacher accuracy vs student accuracy\nraw teachers: '
                 + _fmt_r_short(corr['per_teacher_raw']['acc']), fontsize=10)
    ax = axes[2]
    student_panel(ax, 'ece_over', 1.0, arrows=True)
    ax.set_xlabel('teacher over-confidence ECE_o on test')
    ax.set_title('(c) teacher ECE_o vs student accuracy\nraw teachers: '
                 + _fmt_r_short(corr['per_teacher_raw']['ece_over']), fontsize=10)
    ax = axes[3]
    ax.axhline(0, color='0.35', lw=1)
    ax.axvline(1, color='0.6', lw=0.8, ls=':')
    for i, r in enumerate(rows, 1):
        c = _COLOURS[r['direction']]
        ax.errorbar(r['t_cal'], 100 * r['gain'], xerr=r['t_cal_std'], yerr=100 * r['gain_std'],
                    fmt='D', color=c, ms=6, capsize=2, elinewidth=0.8)
        ax.annotate(str(i), (r['t_cal'], 100 * r['gain']), xytext=(5, 4),
                    textcoords='offset points', fontsize=8, color=c)
    ax.set_xscale('log')
    log_axis(ax.xaxis)
    ax.set_xlabel('calibration temperature T_cal (log scale)')
    ax.set_ylabel('student accuracy: calibrated - raw teacher (points)')
    g = results['gain']['all']['over_seeds']
    ax.set_title(f"(d) gain of calibrating the teacher (mean {100 * g['mean']:+.2f} points)\n"
                 f"gain vs log T_cal ({corr['gain_vs_log_t_cal']['n']} pairs): "
                 + _fmt_r_short(corr['gain_vs_log_t_cal']), fontsize=10)
    cfg = results['config']
    fig.suptitle(
        f"Teacher calibration and KD on sklearn digits: {len(rows)} teachers "
        f"(family {results.get('family', 'custom')}), student MLP "
        f"64-{'-'.join(map(str, cfg['student']['hidden']))}-10, KD tau = {cfg['tau']}, "
        f"w_ce = {cfg['ce_weight']}, w_kd = {cfg['kd_weight']}, {len(cfg['seeds'])} seed(s)\n"
        'markers: mean over seeds, bars: std over seeds; numbers: rows of the tables in '
        'results.md', fontsize=11)
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    fig.savefig(path)
    return path
