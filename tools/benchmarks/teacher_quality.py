"""Does a fast teacher teach as well? Each ``model.teacher_inference`` setting on DigitsDet.

1. the demo's GFL teacher (ResNet-18 width 32) is trained once (or ``--teacher-ckpt`` given);
2. for each setting, in a process of its own: the teacher with that setting applied, its val
   COCO mAP and the temperature fitted on the calib split (``'detections'``, NLL), as
   ``TeacherCalibrationHook`` fits it;
3. for each seed, the KD+cal student (configs/demo/kd-cal_gfl_r18w16_r18w32_digits.py) trained
   with the fp32 teacher and with ``--fast`` (default: the product's defaults), and their val
   mAP.

Every step is a command of the demo's job runner (``tools/harness/jobs.py``): finished steps
with unchanged commands are reused. Writes ``teacher_quality.json`` and ``teacher_quality.md``
to the work dir and prints the tables.

    python tools/benchmarks/teacher_quality.py                 # demo schedule, 3 seeds
    python tools/benchmarks/teacher_quality.py --quick --seeds 0 --student-iters 20
"""
import argparse
import json
import os
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)

from tools.benchmarks.speed.teacher_settings import SETTINGS  # noqa: E402
from tools.demo import (MODES, STUDENT_CFG, TEACHER_CFG, _calib_options, _json,  # noqa: E402
                        _options, _summary, test_job, train_job)
from tools.harness.jobs import Job, run_jobs  # noqa: E402

KD_CAL_CFG = osp.join(ROOT, 'configs/demo/kd-cal_gfl_r18w16_r18w32_digits.py')
#: The product's defaults (no ``teacher_inference`` in the config).
DEFAULT = 'default'


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--quick', action='store_true', help="the demo's --quick data and schedules")
    p.add_argument('--settings', nargs='+', choices=sorted(SETTINGS) + [DEFAULT],
                   default=['fold', 'fold+cl', 'bf16', 'fold+cl+bf16', DEFAULT],
                   help='settings whose teacher mAP and T are compared with fp32')
    p.add_argument('--fast', default=DEFAULT, choices=sorted(SETTINGS) + [DEFAULT],
                   help='setting of the students compared with the fp32 teacher (default: the '
                        "product's defaults)")
    p.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    p.add_argument('--teacher-iters', type=int, default=None)
    p.add_argument('--student-iters', type=int, default=None)
    p.add_argument('--teacher-ckpt', default=None, help='a trained demo teacher (skip step 1)')
    p.add_argument('--work-dir', default=osp.join(ROOT, 'work_dirs', 'teacher_quality'))
    p.add_argument('--data-root', default=None, help='default: data/digits_det[_quick]')
    p.add_argument('--jobs', type=int, default=2, help='steps at once (default 2)')
    p.add_argument('--retrain', action='store_true')
    p.add_argument('--eval-setting', help=argparse.SUPPRESS)  # worker: step 2 for one setting
    p.add_argument('--out', help=argparse.SUPPRESS)
    p.add_argument('--cfg-options', nargs='*', default=[], help=argparse.SUPPRESS)
    return p.parse_args(argv)


def _setting_options(name: str, prefix: str = 'model.teacher_inference.'):
    if name == DEFAULT:
        return []
    return [f'{prefix}{k}={v}' for k, v in SETTINGS[name].items()]


def eval_setting(name: str, ckpt: str, options, out: str) -> None:
    """Step 2 for one setting, in this process: val mAP and the fitted T (written to ``out``)."""
    import tempfile

    from mmengine.config import Config, DictAction
    from mmengine.runner import Runner

    import mmkdcal  # noqa: F401
    from mmkdcal.engine import collect_calibration_data, fit_and_report
    from mmkdcal.models.distillers.teacher_inference import (apply_teacher_inference,
                                                             resolve_teacher_inference)
    parser = argparse.ArgumentParser()
    parser.add_argument('--o', nargs='*', action=DictAction, default={})
    cfg = Config.fromfile(TEACHER_CFG)
    cfg.merge_from_dict(parser.parse_args(['--o', *options]).o if options else {})
    with tempfile.TemporaryDirectory() as tmp:
        cfg.work_dir, cfg.load_from = tmp, None
        runner = Runner.from_cfg(cfg)
        runner.load_checkpoint(ckpt, map_location='cpu')
        settings = resolve_teacher_inference(None if name == DEFAULT else SETTINGS[name])
        apply_teacher_inference(runner.model, settings)
        loader = runner.build_dataloader(cfg.calib_dataloader)
        data = collect_calibration_data(runner.model, loader, 'detections', progress=False)
        report = fit_and_report(data, 'detections', objective='nll')
        metrics = runner.test()
    with open(out, 'w') as f:
        json.dump(dict(setting=name, teacher_inference=settings,
                       mAP=metrics['coco/bbox_mAP'], temperature=report['temperature']), f)


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.eval_setting:
        eval_setting(args.eval_setting, args.teacher_ckpt, args.cfg_options, args.out)
        return {}
    mode = dict(MODES['quick' if args.quick else 'default'])
    mode['teacher_iters'] = args.teacher_iters or mode['teacher_iters']
    mode['student_iters'] = args.student_iters or mode['student_iters']
    work = osp.abspath(args.work_dir)
    data_root = osp.abspath(args.data_root or osp.join(
        ROOT, 'data', 'digits_det_quick' if args.quick else 'digits_det'))
    os.makedirs(work, exist_ok=True)
    from mmkdcal.datasets import build_digits_det
    build_digits_det(data_root, **mode['data'])
    eval_opts = _options(mode, data_root, None) + _calib_options(mode, data_root,
                                                                 'calib_dataloader.')
    jobs = []
    if args.teacher_ckpt:
        ckpt_of = (lambda d: osp.abspath(args.teacher_ckpt))
        deps = ()
    else:
        jobs.append(train_job('teacher', TEACHER_CFG, osp.join(work, 'teacher'),
                              _options(mode, data_root, mode['teacher_iters'], seed=0)))
        ckpt_of = (lambda d: d['teacher_train']['checkpoint'])
        deps = ('teacher_train', )
    for name in ['fp32'] + [s for s in args.settings if s != 'fp32']:
        out = osp.join(work, f'teacher_{name}.json')
        jobs.append(Job(f'teacher_{name}', osp.join(work, f'teacher_{name}'),
                        lambda d, n=name, o=out: [
                            'tools/benchmarks/teacher_quality.py', '--eval-setting', n,
                            '--teacher-ckpt', ckpt_of(d), '--out', o, '--cfg-options',
                            *eval_opts],
                        lambda job, d, o=out: _json(o), deps=deps))
    students = dict.fromkeys(['fp32', args.fast])
    for seed in args.seeds:
        for name in students:
            tag = f'kd_cal_{name}_seed{seed}'

            def opts(d, s=seed, n=name):
                return _options(mode, data_root, mode['student_iters'], seed=s, extra=[
                    f'model.teacher_config={TEACHER_CFG}', f'model.teacher_ckpt={ckpt_of(d)}',
                    *_setting_options(n),
                    *_calib_options(mode, data_root, 'custom_hooks.0.dataloader.')])
            jobs += [train_job(tag, KD_CAL_CFG, osp.join(work, tag), opts, deps=deps),
                     test_job(tag, STUDENT_CFG, osp.join(work, tag), f'{tag}_train',
                              _options(mode, data_root, None))]
    done = run_jobs(jobs, ROOT, osp.join(work, 'logs'), workers=args.jobs, retrain=args.retrain)
    ref = done['teacher_fp32']
    teacher_rows = {}
    for name in ['fp32'] + [s for s in args.settings if s != 'fp32']:
        r = done[f'teacher_{name}']
        teacher_rows[name] = dict(mAP=r['mAP'], temperature=r['temperature'],
                                  mAP_change=r['mAP'] - ref['mAP'],
                                  temperature_rel_change=r['temperature'] / ref['temperature'] - 1)
    student_rows = {}
    for name in students:
        maps = [done[f'kd_cal_{name}_seed{s}_test']['metrics']['coco/bbox_mAP']
                for s in args.seeds]
        mean, spread = _summary(maps)
        student_rows[name] = dict(mAP=maps, mean=mean, std=spread)
    report = dict(args=vars(args), teacher=teacher_rows, students=student_rows)
    lines = ['| teacher_inference | teacher val mAP | change vs fp32 | fitted T | change vs fp32 |',
             '|---|---|---|---|---|']
    for name, r in teacher_rows.items():
        lines.append(f"| {name} | {r['mAP']:.4f} | {r['mAP_change']:+.4f} "
                     f"| {r['temperature']:.4f} | {100 * r['temperature_rel_change']:+.2f}% |")
    lines += ['', f'| KD+cal student, teacher as | val mAP per seed {args.seeds} | mean ± std |',
              '|---|---|---|']
    for name, r in student_rows.items():
        lines.append(f"| {name} | {', '.join(f'{v:.4f}' for v in r['mAP'])} "
                     f"| {r['mean']:.4f} ± {r['std']:.4f} |")
    text = '\n'.join(lines)
    with open(osp.join(work, 'teacher_quality.json'), 'w') as f:
        json.dump(report, f, indent=1)
    with open(osp.join(work, 'teacher_quality.md'), 'w') as f:
        f.write(text + '\n')
    print(text)
    return report


if __name__ == '__main__':
    main()
