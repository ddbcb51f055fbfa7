"""Rank candidate teachers by calibration: one calibration pass each, one sorted table.

For every teacher (a config and a checkpoint; detectors or classifiers) on the same split:
accuracy or COCO bbox mAP, ECE / ACE (classifiers, RoI heads) or D-ECE (detections) with their
over- and under-confidence parts, the fitted temperature T and the calibration error after T.
Writes ``<out>/ranking.md``, ``ranking.json``, ``ranking.png`` and each teacher's
``calibration.json`` / ``calibration.png`` (as tools/calibrate.py writes them).

Examples:
    python tools/analysis/rank_teachers.py --split calib \\
        --teacher configs/demo/gfl_r18w32_digits.py work_dirs/demo/teacher/iter_400.pth w32 \\
        --teacher configs/demo/gfl_r18w16_digits.py work_dirs/demo/student_seed0/iter_400.pth w16
    python tools/analysis/rank_teachers.py --split test --objective ace \\
        --teacher mmkdcal::classification/cifar100/resnet32x4_240e_cifar100.py r32x4.pth \\
        --teacher mmkdcal::classification/cifar100/wrn40-2_240e_cifar100.py wrn40-2.pth

The practical lesson of Kim et al. (IEEE Access 2025): a teacher's calibration error (ACE, ECE)
tells how well it will teach, and temperature scaling removes most of it. It runs every
candidate (a config and a checkpoint, detector or classifier) once over the same split, fits its
temperature, and puts the numbers side by side:

- accuracy (classifiers, from the same pass) or COCO bbox mAP (detectors, from an evaluation
  pass with the split's evaluator);
- calibration error before T, split into its over- and under-confidence parts: ECE and ACE for
  classifiers (``fit_on='logits'``) and RoI heads (``'rois'``), D-ECE for detections;
- the fitted temperature T and the calibration error after dividing the logits by T.

The calibration pass is :func:`mmkdcal.engine.collect_calibration_data` and the fit is
:func:`mmkdcal.engine.fit_and_report`, as in ``tools/calibrate.py`` (the same numbers for the
same teacher and split; each teacher's ``calibration.json`` and ``.png`` are written as that tool
writes them).

A low calibration error is what the paper found to go with better students; our own study on
scikit-learn digits (docs/teacher_calibration_study.md) found the under-confident teachers
teaching best there. The table reports, it does not decide.
"""
import argparse
import json
import math
import os
import os.path as osp
import re
import sys
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from mmengine.config import DictAction  # noqa: E402

import mmkdcal  # noqa: E402,F401  (registers modules, mmkdcal:: configs, safe checkpoints)

__all__ = ['COLUMNS', 'DEFAULT_SORT', 'Candidate', 'evaluate_map',
           'plot_ranking', 'rank_rows', 'rank_teachers', 'write_markdown']

#: ``(config, checkpoint, name)``.
Candidate = Tuple[str, str, str]

#: Table columns by ``fit_on``: ``(key, header)``.
COLUMNS: Dict[str, List[Tuple[str, str]]] = {
    'detections': [('map', 'mAP'), ('map50', 'mAP50'), ('dece', 'D-ECE'),
                   ('dece_over', 'D-ECE over'), ('dece_under', 'D-ECE under'),
                   ('temperature', 'T'), ('dece_after', 'D-ECE after T')],
    'logits': [('acc', 'Acc'), ('ece', 'ECE'), ('ece_over', 'ECE over'),
               ('ece_under', 'ECE under'), ('ace', 'ACE'), ('ace_over', 'ACE over'),
               ('ace_under', 'ACE under'), ('temperature', 'T'), ('ece_after', 'ECE after T'),
               ('ace_after', 'ACE after T')],
}
COLUMNS['rois'] = [('map', 'mAP'), ('map50', 'mAP50')] + COLUMNS['logits'][1:]

#: Default sort key by ``fit_on`` (ascending): the paper's predictor of a good teacher.
DEFAULT_SORT = {'detections': 'dece', 'logits': 'ace', 'rois': 'ace'}

#: Keys sorted descending (higher is better).
_DESCENDING = ('acc', 'map', 'map50')


def _default_evaluator(cfg: Any, split: str) -> Any:
    """``<split>_evaluator`` of the config, else a CocoMetric on the split's annotation file."""
    if cfg.get(f'{split}_evaluator', None) is not None:
        return cfg[f'{split}_evaluator']
    dataset = cfg[f'{split}_dataloader'].get('dataset', {})
    ann_file = dataset.get('ann_file', None)
    if ann_file is None:
        raise ValueError(f'split {split!r}: the config has no {split}_evaluator and its dataset '
                         'no ann_file to build a CocoMetric from; add a '
                         f'{split}_evaluator to the config, or rank without mAP (--no-eval).')
    root = dataset.get('data_root', '') or ''
    return dict(type='CocoMetric', ann_file=osp.join(root, ann_file), metric='bbox',
                format_only=False)


def evaluate_map(cfg: Any, model: torch.nn.Module, loader: Any, split: str,
                 progress: bool = True) -> Dict[str, float]:
    """Evaluate a detector on ``loader`` with the split's evaluator (as ``tools/test.py``).

    Args:
        cfg: The model's config (for ``<split>_evaluator``).
        model: The detector.
        loader: The split's dataloader.
        split: The split name.
        progress: Show a progress bar with ETA.

    Returns:
        The evaluator's metrics (``coco/bbox_mAP``...).
    """
    from mmengine.evaluator import Evaluator
    from mmengine.utils import ProgressBar

    evaluator = Evaluator(_default_evaluator(cfg, split))
    evaluator.dataset_meta = loader.dataset.metainfo
    was_training = model.training
    model.eval()
    bar = ProgressBar(len(loader)) if progress else None
    try:
        with torch.no_grad():
            for batch in loader:
                evaluator.process(data_samples=model.test_step(batch), data_batch=batch)
                if bar is not None:
                    bar.update()
    finally:
        model.train(was_training)
    if bar is not None:
        print()
    return {k: float(v) if isinstance(v, (int, float)) else v
            for k, v in evaluator.evaluate(len(loader.dataset)).items()}


def _slug(name: str) -> str:
    return re.sub(r'[^A-Za-z0-9._-]+', '_', name).strip('_') or 'teacher'


def _scalar_t(t: Any) -> float:
    return float(t) if isinstance(t, (int, float)) else float(np.mean(t))


def rank_rows(rows: List[Dict[str, Any]], sort_by: str) -> List[Dict[str, Any]]:
    """Sort rows by ``sort_by`` (accuracy/mAP descending, errors ascending; NaN/None last).

    Args:
        rows: One dict per teacher.
        sort_by: A row key (a column of :data:`COLUMNS`).

    Returns:
        The sorted rows, each with its 1-based ``rank``.
    """
    sign = -1.0 if sort_by in _DESCENDING else 1.0

    def key(row):
        v = row.get(sort_by, None)
        if sort_by == 'temperature' and v is not None:
            v = _scalar_t(v)
        bad = v is None or (isinstance(v, float) and math.isnan(v))
        return (bad, 0.0 if bad else sign * float(v))
    ordered = sorted(rows, key=key)
    for i, row in enumerate(ordered):
        row['rank'] = i + 1
    return ordered


def _fmt(key: str, value: Any) -> str:
    if value is None:
        return 'n/a'
    if key == 'temperature':
        return f'{value:.3f}' if isinstance(value, float) else f'{np.mean(value):.3f} (per class)'
    if isinstance(value, float) and math.isnan(value):
        return 'n/a'
    return f'{value:.4f}'


def write_markdown(result: Dict[str, Any], path: str) -> str:
    """Write the ranking table (and how to read it) as markdown.

    Args:
        result: The dict returned by :func:`rank_teachers`.
        path: Output ``.md`` path.

    Returns:
        The markdown text.
    """
    cols = COLUMNS[result['fit_on']]
    lines = [f'# Teacher ranking on the {result["split"]} split', '',
             f'{len(result["teachers"])} teachers, sorted by `{result["sort_by"]}` '
             f'({"descending" if result["sort_by"] in _DESCENDING else "ascending"}). '
             f'Calibration on `fit_on={result["fit_on"]}`, temperature fitted with '
             f'`objective={result["objective"]}`, {result["n_bins"]} bins. '
             '"over"/"under": the over- and under-confidence parts of the error before T '
             '(they add up to it).', '',
             '| rank | teacher | ' + ' | '.join(h for _, h in cols) + ' |',
             '|---|---|' + '---|' * len(cols)]
    for row in result['teachers']:
        lines.append(f'| {row["rank"]} | {row["name"]} | ' +
                     ' | '.join(_fmt(k, row.get(k)) for k, _ in cols) + ' |')
    lines += ['', 'Teachers:', '']
    for row in result['teachers']:
        lines.append(f'- {row["name"]}: `{row["config"]}`, `{row["checkpoint"]}` '
                     f'({row["num_samples"]} calibration samples; `{row["calibration_json"]}`)')
    text = '\n'.join(lines) + '\n'
    with open(path, 'w') as f:
        f.write(text)
    return text


def plot_ranking(result: Dict[str, Any], path: str) -> str:
    """Bar chart: calibration error before T (over + under stacked) and after T; accuracy/mAP.

    Args:
        result: The dict returned by :func:`rank_teachers`.
        path: Output ``.png`` path.

    Returns:
        ``path``.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    fit_on, rows = result['fit_on'], result['teachers']
    err = 'dece' if fit_on == 'detections' else 'ace'
    label = {'dece': 'D-ECE', 'ace': 'ACE'}[err]
    quality, q_label = ('acc', 'accuracy') if fit_on == 'logits' else ('map', 'bbox mAP')
    names = [f'{r["rank"]}. {r["name"]}' for r in rows]
    y = np.arange(len(rows))[::-1]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 1.6 + 0.55 * len(rows)),
                                   gridspec_kw=dict(width_ratios=[3, 2]))
    over = np.array([r.get(f'{err}_over', np.nan) for r in rows])
    under = np.array([r.get(f'{err}_under', np.nan) for r in rows])
    after = np.array([r.get(f'{err}_after', np.nan) for r in rows])
    ax1.barh(y + 0.2, over, 0.4, color='#d62728', label=f'{label} over-confidence')
    ax1.barh(y + 0.2, under, 0.4, left=over, color='#1f77b4',
             label=f'{label} under-confidence')
    ax1.barh(y - 0.2, after, 0.4, color='#7f7f7f', label=f'{label} after T')
    for yi, a, r in zip(y, after, rows):
        ax1.text(0 if np.isnan(a) else a, yi - 0.2, f' T={_scalar_t(r["temperature"]):.3f}',
                 va='center', fontsize=8)
    ax1.set_yticks(y, names)
    ax1.set_xlabel(f'{label} on the {result["split"]} split')
    top = np.nanmax(np.concatenate([over + under, after, [1e-3]]))
    ax1.set_xlim(0, 1.2 * top)
    ax1.legend(fontsize=8, loc='lower left', bbox_to_anchor=(0, 1.0), ncol=3, frameon=False)
    ax1.grid(axis='x', alpha=0.3)
    values = [r.get(quality) for r in rows]
    ax2.barh(y, [np.nan if v is None else v for v in values], 0.6, color='#2ca02c')
    ax2.set_yticks(y, [''] * len(rows))
    ax2.set_xlabel(q_label + ('' if any(v is not None for v in values) else ' (not evaluated)'))
    ax2.grid(axis='x', alpha=0.3)
    fig.suptitle(f'Teachers sorted by {result["sort_by"]} (fit_on={fit_on}, '
                 f'objective={result["objective"]})', fontsize=10)
    fig.tight_layout()
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _check_candidates(candidates: Sequence[Candidate], split: str,
                      cfg_options: Optional[dict]) -> None:
    """Fail before any pass: unique names, readable configs with the split, checkpoints."""
    from tools.harness.trained_model import check_splits, read_config

    if len(candidates) < 1:
        raise ValueError('rank_teachers needs at least one candidate (config, checkpoint).')
    names = [c[2] for c in candidates]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f'Teacher names must be unique, {dup} is given twice: name them '
                         '(the third value of --teacher).')
    for config, checkpoint, _ in candidates:
        check_splits(read_config(config, cfg_options), [split], config)
        if not osp.isfile(checkpoint) and not checkpoint.startswith(('http://', 'https://')):
            raise FileNotFoundError(f'checkpoint {checkpoint!r} (of {config}) does not exist.')


def rank_teachers(candidates: Sequence[Candidate],
                  split: str = 'val',
                  out_dir: str = 'work_dirs/rank_teachers',
                  objective: str = 'nll',
                  fit_on: Optional[str] = None,
                  n_bins: int = 15,
                  score_thr: float = 0.05,
                  iou_thr: float = 0.5,
                  sort_by: Optional[str] = None,
                  evaluate: bool = True,
                  cfg_options: Optional[dict] = None,
                  log: Any = print) -> Dict[str, Any]:
    """One calibration pass per candidate teacher; a sorted table, JSON, markdown and a PNG.

    Args:
        candidates: ``(config, checkpoint, name)`` per teacher; all detectors or all
            classifiers, each config with a ``<split>_dataloader`` over the same images.
        split: The split to run on (``'val'``, ``'test'``, ``'calib'`` ...).
        out_dir: Output folder: ``ranking.json``, ``ranking.md``, ``ranking.png`` and one
            sub-folder per teacher with its ``calibration.json`` / ``calibration.png``.
        objective: Temperature fitting objective (``'nll'``, ``'ece'``, ``'ace'``).
        fit_on: ``'detections'``, ``'rois'`` or ``'logits'``; default by model type (as
            ``tools/calibrate.py``).
        n_bins: Bins of the calibration errors.
        score_thr: Detections: ignore those scoring below this.
        iou_thr: Detections: IoU of a true detection.
        sort_by: Column key to sort by (default: ``dece`` for detections, ``ace`` otherwise).
        evaluate: Detectors: also run the split's evaluator for mAP (a second pass).
        cfg_options: Overrides merged into every teacher's config.
        log: Progress printer.

    Returns:
        ``dict(split, fit_on, objective, n_bins, sort_by, teachers=[rows, sorted], files)``.
    """
    from mmkdcal.engine import collect_calibration_data, default_fit_on, fit_and_report
    from mmkdcal.utils.progress import EtaProgress
    from tools.harness.trained_model import build_split_loader, load_trained_model

    _check_candidates(candidates, split, cfg_options)
    if fit_on is not None and fit_on not in DEFAULT_SORT:
        raise ValueError(f'fit_on must be one of {sorted(DEFAULT_SORT)} or None, got {fit_on!r}.')
    os.makedirs(out_dir, exist_ok=True)
    progress = EtaProgress(len(candidates), 'Ranking teachers', log=log, interval=0.0)
    rows: List[Dict[str, Any]] = []
    first: Optional[Tuple[str, str, int]] = None
    for config, checkpoint, name in candidates:
        log(f'== teacher {len(rows) + 1}/{len(candidates)}: {name} ({config})')
        cfg, model = load_trained_model(config, checkpoint, cfg_options, splits=[split])
        loader = build_split_loader(cfg, split)
        this_fit_on = fit_on or default_fit_on(model)
        if this_fit_on not in DEFAULT_SORT:
            raise ValueError(f'{name}: fit_on={this_fit_on!r} is not supported for ranking.')
        if first is None:
            first = (name, this_fit_on, len(loader.dataset))
        elif (this_fit_on, len(loader.dataset)) != first[1:]:
            raise ValueError(
                f'Teachers {first[0]!r} and {name!r} are not comparable: fit_on '
                f'{first[1]!r} on {first[2]} images vs {this_fit_on!r} on '
                f'{len(loader.dataset)} images of {split}. Rank detectors with detectors and '
                'classifiers with classifiers, on the same split.')
        data = collect_calibration_data(model, loader, this_fit_on, score_thr=score_thr,
                                        iou_thr=iou_thr)
        teacher_dir = osp.join(out_dir, _slug(name))
        report = fit_and_report(data, this_fit_on, objective=objective, n_bins=n_bins,
                                out_dir=teacher_dir, prefix='calibration')
        row: Dict[str, Any] = dict(name=name, config=config, checkpoint=checkpoint,
                                   fit_on=this_fit_on, num_samples=report['num_samples'],
                                   temperature=report['temperature'],
                                   calibration_json=osp.join(teacher_dir, 'calibration.json'),
                                   calibration_png=osp.join(teacher_dir, 'calibration.png'))
        for stage, suffix in (('before', ''), ('after', '_after')):
            for key, value in report[stage].items():
                row[key + suffix] = value
        if this_fit_on == 'logits':
            row['acc'] = float((data['logits'].argmax(1) == data['labels']).double().mean())
        elif evaluate:
            metrics = evaluate_map(cfg, model, loader, split)
            row['eval'] = metrics
            row['map'] = metrics.get('coco/bbox_mAP', None)
            row['map50'] = metrics.get('coco/bbox_mAP_50', None)
        rows.append(row)
        del model
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        progress.update(note=f'({name} done)')
    this_fit_on = first[1]
    sort_by = sort_by or DEFAULT_SORT[this_fit_on]
    valid = [k for k, _ in COLUMNS[this_fit_on]]
    if sort_by not in valid:
        raise ValueError(f'sort_by={sort_by!r}: choose one of {valid}.')
    result = dict(split=split, fit_on=this_fit_on, objective=objective, n_bins=n_bins,
                  score_thr=score_thr, iou_thr=iou_thr, sort_by=sort_by,
                  teachers=rank_rows(rows, sort_by))
    files = dict(json=osp.join(out_dir, 'ranking.json'), markdown=osp.join(out_dir, 'ranking.md'),
                 png=osp.join(out_dir, 'ranking.png'))
    result['files'] = files
    plot_ranking(result, files['png'])
    text = write_markdown(result, files['markdown'])
    with open(files['json'], 'w') as f:
        json.dump(result, f, indent=2)
    log('\n' + text)
    log(f'Wrote {files["markdown"]}, {files["json"]} and {files["png"]} (and each teacher\'s '
        f'calibration.json / calibration.png under {out_dir}/<teacher>/).')
    return result


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Rank candidate teachers by calibration')
    parser.add_argument('--teacher', nargs='+', action='append', required=True,
                        metavar='CONFIG CHECKPOINT [NAME]',
                        help='a candidate: its config (file or mmkdcal::/mmdet:: path), its '
                             'checkpoint and optionally a name (default: the config name); '
                             'repeat for each candidate')
    parser.add_argument('--split', default='val',
                        help="the split to run on: '<split>_dataloader' of every config "
                             '(val, test, calib...)')
    parser.add_argument('--objective', choices=['nll', 'ace', 'ece'], default='nll')
    parser.add_argument('--fit-on', choices=['detections', 'rois', 'logits'], default=None,
                        help='default: detections (dense detectors), rois (two-stage), logits '
                             '(classifiers)')
    parser.add_argument('--n-bins', type=int, default=15)
    parser.add_argument('--score-thr', type=float, default=0.05)
    parser.add_argument('--iou-thr', type=float, default=0.5)
    keys = sorted({k for cols in COLUMNS.values() for k, _ in cols})
    parser.add_argument('--sort-by', default=None, choices=keys,
                        help='column to sort by (default: dece for detections, ace otherwise); '
                             'acc/map descending, the rest ascending')
    parser.add_argument('--no-eval', action='store_true',
                        help='detectors: skip the evaluation pass (no mAP column)')
    parser.add_argument('--out', default='work_dirs/rank_teachers', help='output folder')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='overrides merged into every teacher config')
    args = parser.parse_args(argv)
    candidates = []
    for values in args.teacher:
        if len(values) not in (2, 3):
            parser.error(f'--teacher takes CONFIG CHECKPOINT [NAME], got {values}')
        config, checkpoint = values[:2]
        name = values[2] if len(values) == 3 else osp.splitext(osp.basename(config))[0]
        candidates.append((config, checkpoint, name))
    args.candidates = candidates
    return args


def main(argv=None):
    args = parse_args(argv)
    return rank_teachers(args.candidates, split=args.split, out_dir=args.out,
                         objective=args.objective, fit_on=args.fit_on, n_bins=args.n_bins,
                         score_thr=args.score_thr, iou_thr=args.iou_thr, sort_by=args.sort_by,
                         evaluate=not args.no_eval, cfg_options=args.cfg_options)


if __name__ == '__main__':
    main()
