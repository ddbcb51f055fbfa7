"""Measure a trained detector's (or classifier's) calibration, fit a calibrator, report it.

Runs the model once over a split, reports D-ECE / ECE / ACE before and after the calibrator,
writes ``<out>/calibration.json`` and the before/after reliability diagram
``<out>/calibration.png``, and prints the temperature to put into a distillation config
(``model.teacher_temperature=...``). ``--calibrator-file`` also writes the fitted calibrator
(any kind) for ``TeacherCalibrationHook(calibrator_file=...)`` (docs/calibration.md).

Examples:
    python tools/calibrate.py configs/demo/gfl_r18w32_digits.py \
        work_dirs/gfl_r18w32_digits/iter_400.pth
    python tools/calibrate.py CONFIG CKPT --split test --objective ace --fit-on anchors --out DIR
    python tools/calibrate.py CONFIG CKPT --split calib --calibrator platt \
        --calibrator-file work_dirs/teacher_platt.pth
"""
import argparse
import json
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import torch  # noqa: E402
from mmengine.config import DictAction  # noqa: E402

from mmkdcal.calibration import OBJECTIVES  # noqa: E402
from mmkdcal.engine import (TARGETS, calibration_mode_names, calibration_report,  # noqa: E402
                            calibrator_names, collect_calibration_data, default_fit_on,
                            fingerprint_as_teacher, fit_and_report, format_report,
                            get_calibration_mode, jsonable, save_calibrator_file,
                            under_confidence_warning)
from tools.harness.trained_model import build_split_loader, load_trained_model  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Calibrate a trained model (mmkdcal)')
    parser.add_argument('config', help="the model's config file (or 'mmkdcal::<folder>/<file>')")
    parser.add_argument('checkpoint', help='its checkpoint')
    parser.add_argument('--split', default='val',
                        help="dataloader of the config to run on: 'val', 'test', 'train', or the "
                             "name of any '<name>_dataloader' variable in the config (e.g. calib)")
    parser.add_argument('--also-split', nargs='+', default=[],
                        help='also report calibration before/after the fitted temperature on '
                             'these splits (the temperature is fitted on --split only)')
    parser.add_argument('--objective', choices=OBJECTIVES, default='nll')
    parser.add_argument('--fit-on', default=None,
                        help='what to calibrate: a registered calibration mode (now '
                             f'{", ".join(calibration_mode_names())}; a config\'s custom_imports '
                             'may register more); default: detections for dense detectors, rois '
                             'for two-stage, logits for classifiers')
    parser.add_argument('--per-class', action='store_true', help='one temperature per class')
    parser.add_argument('--calibrator', choices=calibrator_names(), default='temperature',
                        help="what to fit; 'auto': each on half the images, the lowest held-out "
                             'error kept')
    parser.add_argument('--target', choices=TARGETS, default='tp',
                        help="'tp': a match is 1; 'iou': the IoU of the match (LaECE's target)")
    parser.add_argument('--score-thr', type=float, default=0.05)
    parser.add_argument('--iou-thr', type=float, default=0.5)
    parser.add_argument('--n-bins', type=int, default=15)
    parser.add_argument('--report-score-thr', type=float, default=None,
                        help='--also-split, detections: report D-ECE of the detections whose '
                             '(scaled) score is at least this, as DetectionCalibrationMetric')
    parser.add_argument('--calibrator-file', default=None,
                        help='also write the fitted calibrator here, for a distillation config: '
                             'TeacherCalibrationHook(calibrator_file=...)')
    parser.add_argument('--teacher-inference', nargs='+', action=DictAction, default=None,
                        help="--calibrator-file: the distiller's model.teacher_inference (e.g. "
                             'precision=bf16), which the file\'s teacher fingerprint covers')
    parser.add_argument('--out', default=None, help='output dir (default: work_dirs/calibrate/'
                                                    '<config name>)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args(argv)


def calibrate(args) -> dict:
    """Run the calibration; return the report dict (also written to ``<out>/calibration.json``).

    ``--fit-on`` is checked against the calibration modes registered when the model is loaded
    (after the config's ``custom_imports``), so a mode registered through
    :func:`mmkdcal.engine.register_calibration_mode` is accepted.
    """
    cfg, model = load_trained_model(args.config, args.checkpoint, args.cfg_options,
                                    splits=[args.split] + list(args.also_split))
    key = f'{args.split}_dataloader'
    out = args.out or osp.join('work_dirs', 'calibrate',
                               osp.splitext(osp.basename(args.config))[0])
    loader = build_split_loader(cfg, args.split)
    fit_on = args.fit_on or default_fit_on(model)
    get_calibration_mode(fit_on, model)  # an unknown or unfit mode fails before the pass
    print(f'Calibrating {osp.basename(args.config)} on {len(loader.dataset)} images of '
          f'{key} (fit_on={fit_on}, objective={args.objective})')
    data = collect_calibration_data(model, loader, fit_on, score_thr=args.score_thr,
                                    iou_thr=args.iou_thr)
    report = fit_and_report(data, fit_on, objective=args.objective, per_class=args.per_class,
                            n_bins=args.n_bins, out_dir=out, prefix='calibration',
                            calibrator=args.calibrator, target=args.target)
    print(format_report(report))
    warning = under_confidence_warning(report)
    if warning:
        print('WARNING: ' + warning)
    if args.also_split:
        report['also'] = {}
        for split in args.also_split:
            other = collect_calibration_data(
                model, build_split_loader(cfg, split), fit_on,
                score_thr=args.score_thr, iou_thr=args.iou_thr)
            report['also'][split] = dict(
                num_samples=len(other['logits']),
                before=calibration_report(other, fit_on, torch.ones(()), args.n_bins,
                                          args.report_score_thr),
                after=calibration_report(other, fit_on, report['state'], args.n_bins,
                                         args.report_score_thr))
            print(f'{split}: ' + ', '.join(
                f'{k} {v:.4f} -> {report["also"][split]["after"][k]:.4f}'
                for k, v in report['also'][split]['before'].items() if k != 'num_dets'))
        with open(osp.join(out, 'calibration.json'), 'w') as f:
            json.dump(jsonable(report), f, indent=2)
    print(f'Wrote {osp.join(out, "calibration.json")} and {osp.join(out, "calibration.png")}')
    if args.calibrator_file:
        sha = save_calibrator_file(args.calibrator_file, report['state'], args.checkpoint,
                                   fingerprint_as_teacher(model, args.teacher_inference))
        print(f'Wrote {args.calibrator_file} (sha256 {sha}). Put it into a distillation config: '
              f"TeacherCalibrationHook(calibrator_file='{args.calibrator_file}', "
              f"calibrator_sha256='{sha}') with model.teacher_temperature=None")
        report['calibrator_file'] = dict(path=args.calibrator_file, sha256=sha)
    if 'temperature' not in report:
        print(f"TeacherCalibrationHook(calibrator='{report['calibrator']}') fits it in training.")
        return report
    t = report['temperature']
    print(f'Put it into a distillation config: --cfg-options model.teacher_temperature={t}'
          if isinstance(t, float) else
          f'Put it into a distillation config: model.teacher_temperature={t}')
    return report


def main(argv=None):
    return calibrate(parse_args(argv))


if __name__ == '__main__':
    main()
