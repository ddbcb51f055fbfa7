"""The DigitsDet demo for the DETR family: a DINO teacher, DINO students without KD, with KD,
with KD from the calibrated teacher (DistillDINO, Hungarian query alignment).

The same steps as ``tools/demo.py``, whose step functions it reuses (each step is a
``tools/train.py`` / ``tools/test.py`` / ``tools/calibrate.py`` subprocess):

1. build DigitsDet if absent;
2. train the teacher (``configs/demo/dino_r18w32_digits.py``), or take ``--teacher-ckpt``;
3. in parallel, one thread each: evaluate and calibrate the teacher (calib split, D-ECE
   before/after), train the students (``configs/demo/dino_r18w16_digits.py``, then
   ``kd_dino_...`` and ``kd-cal_dino_...``) with the same seed and schedule, evaluate them;
4. print a table, write ``<work-dir>/results.md`` and ``results.json``.

    python tools/demo_detr.py                       # teacher 1500 + students 400 iterations
    python tools/demo_detr.py --teacher-ckpt work_dirs/dino_r18w32_digits/iter_1500.pth
    python tools/demo_detr.py --quick               # minutes: tiny data and schedules (tests)
"""
import argparse
import json
import os
import os.path as osp
import sys
import time

HERE = osp.dirname(osp.abspath(__file__))
sys.path.insert(0, HERE)
import demo as steps  # noqa: E402  (tools/demo.py: the step functions)

ROOT = steps.ROOT
TEACHER_CFG = osp.join(ROOT, 'configs/demo/dino_r18w32_digits.py')
STUDENT_CFG = osp.join(ROOT, 'configs/demo/dino_r18w16_digits.py')
KD_CFG = osp.join(ROOT, 'configs/demo/kd_dino_r18w16_r18w32_digits.py')
KD_CAL_CFG = osp.join(ROOT, 'configs/demo/kd-cal_dino_r18w16_r18w32_digits.py')
#: Each mode: data size, schedules (iterations; None: the config's), batch size, seeds.
MODES = {
    'quick': dict(data=dict(n_train=64, n_calib=24, n_val=24), teacher_iters=24,
                  student_iters=12, batch=4, seeds=[0], score_thr=0.0),
    'default': dict(data=dict(), teacher_iters=None, student_iters=400, batch=None, seeds=[0],
                    score_thr=0.3),
}
RUNS = (('student (no KD)', 'student', STUDENT_CFG), ('KD', 'kd', KD_CFG),
        ('KD + calibrated teacher', 'kd_cal', KD_CAL_CFG))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='mmkdcal DETR-family demo on DigitsDet')
    parser.add_argument('--quick', action='store_true', help='tiny run (tests)')
    parser.add_argument('--work-dir', default=None, help='default: work_dirs/demo_detr')
    parser.add_argument('--data-root', default=None, help='default: data/digits_det')
    parser.add_argument('--teacher-ckpt', default=None,
                        help='a trained configs/demo/dino_r18w32_digits.py checkpoint to use '
                             'instead of training the teacher')
    parser.add_argument('--seeds', type=int, nargs='+', default=None, help='student seeds')
    parser.add_argument('--runs', nargs='+', default=[key for _, key, _ in RUNS],
                        choices=[key for _, key, _ in RUNS], help='student runs to do')
    parser.add_argument('--student-iters', type=int, default=None)
    parser.add_argument('--students-only', action='store_true',
                        help='train and evaluate the --runs students only (no teacher steps, '
                             'no table; a later full run reuses them)')
    parser.add_argument('--retrain', action='store_true')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    mode = 'quick' if args.quick else 'default'
    mode_cfg = dict(MODES[mode])
    if args.student_iters:
        mode_cfg['student_iters'] = args.student_iters
    suffix = '_quick' if args.quick else ''
    work = osp.abspath(args.work_dir or osp.join(ROOT, 'work_dirs', f'demo_detr{suffix}'))
    data_root = osp.abspath(args.data_root or osp.join(ROOT, 'data', f'digits_det{suffix}'))
    seeds = args.seeds or mode_cfg['seeds']
    logs = osp.join(work, 'logs')
    os.makedirs(logs, exist_ok=True)
    t_start = time.time()
    from mmkdcal.datasets import build_digits_det

    class _Log:
        info = staticmethod(steps._say)

    print(f'== 1. DigitsDet in {data_root}')
    build_digits_det(data_root, logger=_Log(), **mode_cfg['data'])

    print('== 2. teacher')
    teacher_dir = osp.join(work, 'teacher')
    if args.students_only:
        teacher_ckpt = osp.abspath(args.teacher_ckpt or 'none')
    elif args.teacher_ckpt:
        teacher_ckpt = osp.abspath(args.teacher_ckpt)
        os.makedirs(teacher_dir, exist_ok=True)
    else:
        t_opts = steps._options(mode_cfg, data_root, mode_cfg['teacher_iters'], seed=0)
        teacher_ckpt = steps._train(TEACHER_CFG, teacher_dir, t_opts, logs, 'teacher',
                                    args.retrain)

    print('== 3. teacher evaluation and calibration; students (in parallel, one thread each)')
    cal_dir = osp.join(work, 'teacher_calibration')
    thr = mode_cfg['score_thr']

    def teacher_eval():
        return steps._test(TEACHER_CFG, teacher_ckpt, teacher_dir,
                           steps._options(mode_cfg, data_root, None), logs, 'teacher', threads=1)

    def teacher_calibration():
        steps._run(['tools/calibrate.py', TEACHER_CFG, teacher_ckpt, '--split', 'calib',
                    '--also-split', 'val', '--fit-on', 'detections', '--n-bins', '10',
                    '--report-score-thr', str(thr), '--out', cal_dir, '--cfg-options',
                    *steps._calib_options(mode_cfg, data_root, 'calib_dataloader.'),
                    *steps._calib_options(mode_cfg, data_root, 'val_dataloader.')],
                   osp.join(logs, 'teacher_calibration.log'), tag='[calibrate] ', threads=1)
        with open(osp.join(cal_dir, 'calibration.json')) as f:
            return json.load(f)

    kd_extra = [f'model.teacher_config={TEACHER_CFG}', f'model.teacher_ckpt={teacher_ckpt}']

    def student(cfg, key, seed):
        extra = [] if key == 'student' else list(kd_extra)
        if key == 'kd_cal':
            extra += steps._calib_options(mode_cfg, data_root, 'custom_hooks.0.dataloader.')
        opts = steps._options(mode_cfg, data_root, mode_cfg['student_iters'], seed=seed,
                              extra=extra)
        run_dir = osp.join(work, f'{key}_seed{seed}')
        t0 = time.time()
        ckpt = steps._train(cfg, run_dir, opts, logs, f'{key}_seed{seed}', args.retrain,
                            threads=1)
        train_s = time.time() - t0
        metrics = steps._test(STUDENT_CFG, ckpt, run_dir,
                              steps._options(mode_cfg, data_root, None), logs,
                              f'{key}_seed{seed}', threads=1)
        cal_json = osp.join(run_dir, 'teacher_calibration.json')
        fitted = json.load(open(cal_json))['temperature'] if osp.isfile(cal_json) else None
        return key, seed, metrics, fitted, train_s

    jobs = [(lambda c=cfg, k=key, s=seed: student(c, k, s))
            for seed in seeds for _, key, cfg in RUNS if key in args.runs]
    if args.students_only:
        for key, seed, metrics, _, train_s in steps._parallel(jobs):
            print(key, seed, metrics, f'trained in {train_s / 60:.1f} min')
        return None
    results = steps._parallel([teacher_eval, teacher_calibration] + jobs)
    teacher_metrics, calibration, runs = results[0], results[1], results[2:]

    print('== 4. results')
    names = {key: name for name, key, _ in RUNS}
    after_val = calibration['also']['val']['after']
    rows = {'teacher': [teacher_metrics],
            'teacher, T-scaled': [dict(teacher_metrics, **{
                'calib/dece': after_val['dece'], 'calib/dece_box': after_val.get('dece_box')})]}
    wall = {}
    for key, seed, metrics, _, train_s in runs:
        rows.setdefault(names[key], []).append(metrics)
        wall.setdefault(names[key], []).append(train_s)
    fitted = [f for _, _, _, f, _ in runs if f is not None]
    table = ['| model | ' + ' | '.join(label for _, label in steps.METRICS) +
             ' | training wall time (min) |', '|---|' + '---|' * (len(steps.METRICS) + 1)]
    summary = {}
    for name, res in rows.items():
        summary[name] = {}
        cells = []
        for key, _ in steps.METRICS:
            mean, spread = steps._summary([r.get(key) for r in res])
            summary[name][key] = dict(mean=mean, std=spread, n=len(res))
            cells.append(steps._fmt(mean, spread, len(res)))
        minutes = ', '.join(f'{s / 60:.0f}' if s > 5 else 'reused' for s in
                            wall.get(name, [])) or '-'
        table.append(f'| {name} | ' + ' | '.join(cells) + f' | {minutes} |')
    cb, ca = calibration['before'], calibration['after']
    lines = [
        f'# mmkdcal DETR-family demo on DigitsDet ({mode} mode)', '',
        f'Teacher DINO R18-w32, students DINO R18-w16 (DistillDINO, Hungarian query alignment); '
        f'students trained {mode_cfg["student_iters"]} iterations, seeds {seeds}.',
        f'Teacher temperature fitted on the calib split (NLL on its detections): '
        f'**T = {calibration["temperature"]:.3f}**; teacher D-ECE on the calib split '
        f'{cb["dece"]:.4f} -> {ca["dece"]:.4f}, on val '
        f'{calibration["also"]["val"]["before"]["dece"]:.4f} -> {after_val["dece"]:.4f}.',
        'TeacherCalibrationHook refitted inside each KD+cal run: T = '
        + (', '.join(f'{t:.3f}' for t in fitted) or '-') + '.', '',
        f'Evaluation on the val split: COCO bbox mAP@[.5:.95], mAP50, D-ECE (10 bins) of the '
        f'detections scoring at least {thr}, matched at IoU 0.5.', '', *table, '',
        f'Wall time of the whole run: {(time.time() - t_start) / 60:.1f} min.']
    md = '\n'.join(lines) + '\n'
    with open(osp.join(work, 'results.md'), 'w') as f:
        f.write(md)
    with open(osp.join(work, 'results.json'), 'w') as f:
        json.dump(dict(mode=mode, seeds=seeds, student_iters=mode_cfg['student_iters'],
                       teacher_ckpt=teacher_ckpt, calibration=calibration,
                       hook_temperatures=fitted, summary=summary, runs=rows,
                       train_wall_s=wall), f, indent=2)
    print('\n' + md)
    return summary


if __name__ == '__main__':
    main()
