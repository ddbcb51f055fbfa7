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
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import mmkdcal  # noqa: E402,F401  (registers modules, mmkdcal:: configs, safe checkpoints)
from mmengine.config import DictAction  # noqa: E402

from mmkdcal.analysis.teacher_ranking import COLUMNS, rank_teachers  # noqa: E402


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
