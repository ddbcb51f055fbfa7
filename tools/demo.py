"""The whole story on DigitsDet, the embedded default data (no download, no GPU needed).

1. build DigitsDet (seconds) if absent;
2. train the teacher (GFL, ResNet-18 width 32) and reuse it when it is already trained;
3. calibrate it on the held-out calib split (D-ECE before/after, temperature);
4. train students (GFL, ResNet-18 width 16) with the same seed and schedule: no KD, KD from the
   raw teacher, KD from the calibrated teacher (TeacherCalibrationHook);
5. evaluate all on the val split: COCO bbox mAP / mAP50 and D-ECE (DetectionCalibrationMetric);
6. print a table, write ``<work-dir>/results.md``, ``results.json`` and reliability PNGs.

``--family`` runs the same steps for another detector family (:data:`FAMILIES`: RTMDet, Mask
R-CNN with bbox and segm mAP, Cascade R-CNN, CrossKD-GFL), with its own demo configs and
``work_dirs/demo_<family>``; the default, ``gfl``, is the run described above.

Every step runs the project's command-line tools (tools/train.py, tools/test.py,
tools/calibrate.py) in a subprocess, through the tools' job runner (``tools/harness/jobs.py``),
so the logs show exactly what a user would run. A step whose command, configs and inputs are
unchanged since it finished is reused (``--retrain`` runs everything again). The console shows
each step's progress with an ETA (MMEngine's iteration lines, the calibration and evaluation
passes' progress bars), a ``demo: k/N`` step count with the demo's own ETA, and at the end
where every file went.

    python tools/demo.py            # default: about 15 minutes on a 2-core CPU
    python tools/demo.py --quick    # a minute or two, small data and schedules (for tests)
    python tools/demo.py --full     # longer schedules, 3 seeds, mean and spread
    python tools/demo.py --family rtmdet --jobs 2   # another family, at most 2 steps at once
"""
import argparse
import json
import math
import os
import os.path as osp
import re
import statistics
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)

from tools.harness.jobs import Job, run_jobs  # noqa: E402

TEACHER_CFG = osp.join(ROOT, 'configs/demo/gfl_r18w32_digits.py')
STUDENT_CFG = osp.join(ROOT, 'configs/demo/gfl_r18w16_digits.py')
KD_CFG = osp.join(ROOT, 'configs/demo/kd_gfl_r18w16_r18w32_digits.py')
KD_CAL_CFG = osp.join(ROOT, 'configs/demo/kd-cal_gfl_r18w16_r18w32_digits.py')

#: Each mode: data size, schedules (iterations), batch size, seeds.
#: ``score_thr``: detections kept for D-ECE (and by the models at test time in quick mode, whose
#: barely trained students would otherwise output nothing to evaluate).
MODES = {
    'quick': dict(data=dict(n_train=160, n_calib=48, n_val=48), teacher_iters=100,
                  student_iters=60, batch=8, seeds=[0], score_thr=0.0),
    'default': dict(data=dict(), teacher_iters=None, student_iters=None, batch=None, seeds=[0],
                    score_thr=0.3),
    'full': dict(data=dict(), teacher_iters=1200, student_iters=1200, batch=None,
                 seeds=[0, 1, 2], score_thr=0.3),
}
METRICS = [('coco/bbox_mAP', 'mAP'), ('coco/bbox_mAP_50', 'mAP50'), ('calib/dece', 'D-ECE'),
           ('calib/dece_box', 'D-ECE (box)')]
#: Extra columns of the families evaluated with instance masks.
SEGM_METRICS = [('coco/segm_mAP', 'segm mAP'), ('coco/segm_mAP_50', 'segm mAP50')]


def _demo_cfg(name):
    return osp.join(ROOT, 'configs/demo', name)


#: The other families' schedules. Default: sized so that one family's whole run (teacher,
#: calibration, three students, five evaluations) takes at most about 20 minutes on a shared
#: 2-core CPU: teachers 300 iterations (the GFL teacher of CrossKD-GFL 400), students 200; RTMDet,
#: which learns to classify far more slowly from scratch (its teacher reached 0.075 mAP after
#: 300), 1200 and 600; two-stage models train on batches of 8 (their configs). --quick: GFL's
#: (shorter ones leave an RTMDet teacher with no detection to calibrate on, and students whose
#: boxes are all degenerate).
SHORT = {'default': dict(teacher_iters=300, student_iters=200)}

#: Each family: its four demo configs (teacher, student, KD, KD from the calibrated teacher),
#: ``fit_on`` of the teacher's calibration (None: tools/calibrate.py's default), the data folder
#: name and extra DigitsDet build parameters, the test-time score-threshold keys (quick mode
#: keeps every detection), whether it is evaluated with segm mAP, and per-mode schedules that
#: replace :data:`MODES` entries.
FAMILIES = {
    'gfl': dict(
        title='GFL', teacher=TEACHER_CFG, student=STUDENT_CFG, kd=KD_CFG, kd_cal=KD_CAL_CFG,
        fit_on=None, data='digits_det', build={}, score_thr_keys=('model.test_cfg.score_thr',),
        segm=False, schedule={}),
    'rtmdet': dict(
        title='RTMDet (CSPNeXt)', teacher=_demo_cfg('rtmdet_cspnext-w32_digits.py'),
        student=_demo_cfg('rtmdet_cspnext-w16_digits.py'),
        kd=_demo_cfg('kd_rtmdet_cspnext-w16_cspnext-w32_digits.py'),
        kd_cal=_demo_cfg('kd-cal_rtmdet_cspnext-w16_cspnext-w32_digits.py'),
        fit_on='detections', data='digits_det', build={},
        score_thr_keys=('model.test_cfg.score_thr',), segm=False,
        schedule={'default': dict(teacher_iters=1200, student_iters=600)}),
    'mask_rcnn': dict(
        title='Mask R-CNN', teacher=_demo_cfg('mask-rcnn_r18w32_digits.py'),
        student=_demo_cfg('mask-rcnn_r18w16_digits.py'),
        kd=_demo_cfg('kd_mask-rcnn_r18w16_r18w32_digits.py'),
        kd_cal=_demo_cfg('kd-cal_mask-rcnn_r18w16_r18w32_digits.py'),
        fit_on='rois', data='digits_det_masks', build=dict(with_masks=True),
        score_thr_keys=('model.test_cfg.rcnn.score_thr',), segm=True, schedule=SHORT),
    'cascade_rcnn': dict(
        title='Cascade R-CNN', teacher=_demo_cfg('cascade-rcnn_r18w32_digits.py'),
        student=_demo_cfg('cascade-rcnn_r18w16_digits.py'),
        kd=_demo_cfg('kd_cascade-rcnn_r18w16_r18w32_digits.py'),
        kd_cal=_demo_cfg('kd-cal_cascade-rcnn_r18w16_r18w32_digits.py'),
        fit_on='rois', data='digits_det', build={},
        score_thr_keys=('model.test_cfg.rcnn.score_thr',), segm=False, schedule=SHORT),
    'crosskd_gfl': dict(
        title='CrossKD-GFL', teacher=TEACHER_CFG, student=_demo_cfg('gfl_r18w16-h64_digits.py'),
        kd=_demo_cfg('crosskd_gfl_r18w16-h64_r18w32_digits.py'),
        kd_cal=_demo_cfg('crosskd-cal_gfl_r18w16-h64_r18w32_digits.py'),
        fit_on='detections', data='digits_det', build={},
        score_thr_keys=('model.test_cfg.score_thr',), segm=False,
        schedule={'default': dict(teacher_iters=400, student_iters=200)}),
}


def family_mode(family, mode):
    """The mode's settings with the family's schedule for it."""
    return dict(MODES[mode], **FAMILIES[family]['schedule'].get(mode, {}))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='mmkdcal demo on DigitsDet')
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument('--quick', action='store_true', help='tiny run (tests)')
    mode.add_argument('--full', action='store_true', help='longer schedules, 3 seeds')
    parser.add_argument('--family', choices=sorted(FAMILIES), default='gfl',
                        help='detector family (default gfl); the others write to '
                             'work_dirs/demo_<family>')
    parser.add_argument('--work-dir', default=None,
                        help='default: work_dirs/demo (work_dirs/demo_quick with --quick); '
                             'work_dirs/demo_<family>[_quick] for other families')
    parser.add_argument('--data-root', default=None,
                        help='default: data/digits_det (data/digits_det_quick with --quick); '
                             'Mask R-CNN: data/digits_det_masks[_quick] (a build with masks)')
    parser.add_argument('--seeds', type=int, nargs='+', default=None, help='student seeds')
    parser.add_argument('--threads', type=int, default=1,
                        help='torch threads of the teacher training (the later steps run in '
                             'parallel with one thread each); 1 is fastest on a shared 2-core '
                             'machine, where competing OpenMP threads stall each other')
    parser.add_argument('--jobs', type=int, default=None,
                        help='most steps (subprocesses) run at once after the teacher is '
                             'trained; default: all five (teacher evaluation and calibration, '
                             'three students) together')
    parser.add_argument('--retrain', action='store_true',
                        help='retrain everything, even what the work dir already holds')
    args = parser.parse_args(argv)
    if args.jobs is not None and args.jobs < 1:
        parser.error('--jobs must be >= 1')
    return args


#: A progress-bar line of a calibration or evaluation pass (MMEngine's ProgressBar, whose
#: carriage returns the text-mode pipe turns into line ends).
_BAR = re.compile(r'^\[[> ]*\] (\d+)/(\d+), .*ETA: *\S+')
#: Seconds between two forwarded progress-bar lines of one step.
BAR_INTERVAL = 15.0


def _say(msg):
    print(msg, flush=True)


def _json(path):
    with open(path) as f:
        return json.load(f)


def _echo():
    """A filter of one step's output: what a user waits on, i.e. iteration lines (with
    MMEngine's eta), metrics, the calibration result, and progress-bar lines (with ETA) every
    ``BAR_INTERVAL`` seconds."""
    last_bar = [float('-inf')]

    def echo(line):
        if ' - mmengine - ' in line:
            if any(k in line for k in ('Iter(train)', 'Iter(test)', 'bbox_mAP:',
                                       'Teacher calibration', 'Calibrating the teacher')):
                return line.split(' - mmengine - INFO - ')[-1].rstrip()[:150]
            return None
        if line.startswith(('temperature', 'val:')):
            return line.rstrip()[:200]
        bar = _BAR.match(line.strip())
        if bar is not None:
            done, total = int(bar.group(1)), int(bar.group(2))
            now = time.monotonic()
            if done == total or now - last_bar[0] >= BAR_INTERVAL:
                last_bar[0] = now
                return 'pass ' + line.strip().split('] ', 1)[-1][:120]
        return None
    return echo


def _options(mode_cfg, data_root, iters, seed=None, extra=(), family='gfl'):
    opts = [f'data_root={data_root}/',
            f'train_dataloader.dataset.data_root={data_root}/',
            f'val_dataloader.dataset.data_root={data_root}/',
            f'test_dataloader.dataset.data_root={data_root}/',
            f'val_evaluator.0.ann_file={data_root}/annotations/val.json',
            f'test_evaluator.0.ann_file={data_root}/annotations/val.json',
            'default_hooks.visualization.draw=False']
    if mode_cfg['score_thr'] != 0.3:
        opts += [f'val_evaluator.1.score_thr={mode_cfg["score_thr"]}',
                 f'test_evaluator.1.score_thr={mode_cfg["score_thr"]}']
        opts += [f'{key}={mode_cfg["score_thr"]}' for key in FAMILIES[family]['score_thr_keys']]
    build = mode_cfg['data']
    for split in ('train', 'val', 'test'):
        for k, v in build.items():
            opts.append(f'{split}_dataloader.dataset.build_cfg.{k}={v}')
    if iters is not None:
        opts += [f'train_cfg.max_iters={iters}', f'train_cfg.val_interval={iters}',
                 f'default_hooks.checkpoint.interval={iters}',
                 f'param_scheduler.0.end={max(1, iters // 12)}',
                 f'param_scheduler.1.begin={max(1, iters // 12)}',
                 f'param_scheduler.1.end={iters}']
    if mode_cfg['batch'] is not None:
        opts.append(f'train_dataloader.batch_size={mode_cfg["batch"]}')
    if seed is not None:
        opts.append(f'randomness.seed={seed}')
    return opts + list(extra)


def _calib_options(mode_cfg, data_root, prefix):
    opts = [f'{prefix}dataset.data_root={data_root}/']
    opts += [f'{prefix}dataset.build_cfg.{k}={v}' for k, v in mode_cfg['data'].items()]
    return opts


def _checkpoint(job, deps):
    """A training step's result: the checkpoint its ``last_checkpoint`` names."""
    with open(osp.join(job.work_dir, 'last_checkpoint')) as f:
        return dict(checkpoint=f.read().strip())


def _metrics(path):
    """An evaluation step's result: the metrics ``tools/test.py --metrics-out`` wrote."""
    return lambda job, deps: dict(metrics=_json(path))


def train_job(name, cfg, work_dir, opts, deps=(), stamp_deps=None, threads=1):
    """Train ``cfg`` in ``work_dir`` (``opts``: a list, or ``deps_results -> list``)."""
    def command(d):
        return ['tools/train.py', cfg, '--work-dir', work_dir, '--cfg-options',
                *(opts(d) if callable(opts) else opts)]
    return Job(f'{name}_train', work_dir, command, _checkpoint, deps=deps,
               stamp_deps=stamp_deps, threads=threads, echo=_echo(),
               reusable=lambda result: osp.isfile(result['checkpoint']))


def test_job(name, cfg, work_dir, train, opts):
    """Evaluate the checkpoint of the job ``train`` on val; metrics in ``work_dir``."""
    out = osp.join(work_dir, 'val_metrics.json')

    def command(d):
        return ['tools/test.py', cfg, d[train]['checkpoint'], '--work-dir',
                osp.join(work_dir, 'test'), '--metrics-out', out, '--cfg-options', *opts]
    return Job(f'{name}_test', osp.join(work_dir, 'test'), command, _metrics(out),
               deps=(train, ), echo=_echo())


def _summary(values):
    values = [v for v in values if v is not None]
    if not values:
        return None, None
    mean = statistics.fmean(values)
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return mean, spread


def _fmt(mean, spread, n):
    if mean is None or math.isnan(mean):  # NaN: e.g. D-ECE without a detection above score_thr
        return 'n/a'
    return f'{mean:.4f}' if n == 1 else f'{mean:.4f} ± {spread:.4f}'


def _minutes(wall):
    """'train + eval' minutes of one run (``'reused'`` for a training that was reused)."""
    train = 'reused' if wall.get('train') is None else f'{wall["train"] / 60:.1f}'
    return train if wall.get('eval') is None else f'{train} + {wall["eval"] / 60:.1f}'


def main(argv=None):
    args = parse_args(argv)
    fam = FAMILIES[args.family]
    mode = 'quick' if args.quick else 'full' if args.full else 'default'
    mode_cfg = family_mode(args.family, mode)
    suffix = '_quick' if mode == 'quick' else ''
    name = 'demo' if args.family == 'gfl' else f'demo_{args.family}'
    work = osp.abspath(args.work_dir or osp.join(ROOT, 'work_dirs', f'{name}{suffix}'))
    data_root = osp.abspath(args.data_root or osp.join(ROOT, 'data', f'{fam["data"]}{suffix}'))
    seeds = args.seeds or mode_cfg['seeds']
    logs = osp.join(work, 'logs')
    os.makedirs(logs, exist_ok=True)
    t_start = time.time()
    teacher_cfg, student_cfg = fam['teacher'], fam['student']
    fit_on = fam['fit_on'] or 'detections'  # calibrate.py's default for the dense GFL
    metrics_cols = METRICS[:2] + (SEGM_METRICS if fam['segm'] else []) + METRICS[2:]

    def options(iters, seed=None, extra=()):
        return _options(mode_cfg, data_root, iters, seed=seed, extra=extra, family=args.family)

    from mmkdcal.datasets import build_digits_det

    class _Log:
        info = staticmethod(_say)

    print(f'== 1. DigitsDet in {data_root}')
    build_digits_det(data_root, logger=_Log(), **mode_cfg['data'], **fam['build'])

    print(f'== 2. teacher ({fam["title"]}); then 3-4. teacher evaluation and calibration (calib '
          'split); students, in parallel (one thread each'
          + (f', at most {args.jobs} at once)' if args.jobs else ')'))
    teacher_dir = osp.join(work, 'teacher')
    cal_dir = osp.join(work, 'teacher_calibration')
    thr = mode_cfg['score_thr']
    fit = [] if fam['fit_on'] is None else ['--fit-on', fam['fit_on']]
    jobs = [
        train_job('teacher', teacher_cfg, teacher_dir, options(mode_cfg['teacher_iters'], seed=0),
                  threads=args.threads),
        test_job('teacher', teacher_cfg, teacher_dir, 'teacher_train', options(None)),
        Job('calibrate', cal_dir, lambda d: [
            'tools/calibrate.py', teacher_cfg, d['teacher_train']['checkpoint'], '--split',
            'calib', '--also-split', 'val', *fit, '--n-bins', '10', '--report-score-thr',
            str(thr), '--out', cal_dir, '--cfg-options',
            *_calib_options(mode_cfg, data_root, 'calib_dataloader.'),
            *_calib_options(mode_cfg, data_root, 'val_dataloader.')],
            lambda job, d: _json(osp.join(cal_dir, 'calibration.json')),
            deps=('teacher_train', ), echo=_echo())]

    def kd_extra(d):
        return [f'model.teacher_config={teacher_cfg}',
                f'model.teacher_ckpt={d["teacher_train"]["checkpoint"]}']
    runs = [('student (no KD)', 'student', student_cfg, lambda d: []),
            ('KD', 'kd', fam['kd'], kd_extra),
            ('KD + calibrated teacher', 'kd_cal', fam['kd_cal'], lambda d: kd_extra(d) +
             _calib_options(mode_cfg, data_root, 'custom_hooks.0.dataloader.'))]
    for seed in seeds:
        for _, key, cfg, extra in runs:
            tag = f'{key}_seed{seed}'
            # every student waits for the teacher (the machine is the teacher's alone while it
            # trains); the plain student does not depend on it, so its stamp leaves it out
            jobs += [train_job(tag, cfg, osp.join(work, tag), lambda d, s=seed, e=extra: options(
                         mode_cfg['student_iters'], seed=s, extra=e(d)),
                         deps=('teacher_train', ), stamp_deps=() if key == 'student' else None),
                     test_job(tag, student_cfg, osp.join(work, tag), f'{tag}_train',
                              options(None))]
    done = run_jobs(jobs, ROOT, logs, workers=args.jobs or 2 + len(runs), retrain=args.retrain,
                    say=_say, progress='demo')

    def wall_of(name):
        train, test = done[f'{name}_train'], done[f'{name}_test']
        return dict(train=None if train['_reused'] else train['_wall_s'], eval=test['_wall_s'])
    teacher_ckpt = done['teacher_train']['checkpoint']
    calibration = {k: v for k, v in done['calibrate'].items() if not k.startswith('_')}
    wall = {'teacher': dict(wall_of('teacher'), calibration=done['calibrate']['_wall_s'])}
    rows, fitted = {'teacher': [done['teacher_test']['metrics']]}, []
    for seed in seeds:
        for name, key, _, _ in runs:
            tag = f'{key}_seed{seed}'
            rows.setdefault(name, []).append(done[f'{tag}_test']['metrics'])
            wall.setdefault(name, []).append(wall_of(tag))
            cal_json = osp.join(work, tag, 'teacher_calibration.json')
            if osp.isfile(cal_json):
                fitted.append(_json(cal_json)['temperature'])
    temperature = calibration['temperature']
    after_val = calibration['also']['val']['after']
    # detections: temperature scaling does not reorder a class's detections, so the scaled
    # teacher keeps its mAP and only its D-ECE changes; on RoI softmax logits it is no
    # post-hoc rescoring of the detections, so there is no such row
    scaled_row = {'teacher, T-scaled': [dict(rows['teacher'][0], **{
        'calib/dece': after_val['dece'], 'calib/dece_box': after_val.get('dece_box')})]
    } if fit_on == 'detections' else {}
    rows = {'teacher': rows['teacher'], **scaled_row,
            **{k: v for k, v in rows.items() if k != 'teacher'}}

    print('== 5. results')
    table = ['| model | ' + ' | '.join(label for _, label in metrics_cols) +
             ' | wall time (min): train + eval |', '|---|' + '---|' * (len(metrics_cols) + 1)]
    summary = {}
    for name, results in rows.items():
        cells = []
        summary[name] = {}
        for key, label in metrics_cols:
            mean, spread = _summary([r.get(key) for r in results])
            summary[name][key] = dict(mean=mean, std=spread, n=len(results))
            cells.append(_fmt(mean, spread, len(results)))
        run_wall = [wall['teacher']] if name == 'teacher' else wall.get(name, [])
        minutes = '; '.join(_minutes(w) for w in run_wall) or '-'
        table.append(f'| {name} | ' + ' | '.join(cells) + f' | {minutes} |')
    cb, ca = calibration['before'], calibration['after']
    if fit_on == 'detections':
        cal_line = (
            f'Teacher temperature fitted on the calib split (NLL on its detections): '
            f'**T = {temperature:.3f}**; teacher D-ECE on the calib split '
            f'{cb["dece"]:.4f} -> {ca["dece"]:.4f}, on val '
            f'{calibration["also"]["val"]["before"]["dece"]:.4f} -> {after_val["dece"]:.4f}.')
        scaled_note = (' Temperature scaling does not reorder a class\'s detections, so the '
                       'T-scaled teacher has the same mAP.')
    else:
        cal_line = (
            f'Teacher temperature fitted on the calib split (NLL on its {fit_on}): '
            f'**T = {temperature:.3f}**; teacher ECE ({fit_on}) on the calib split '
            f'{cb["ece"]:.4f} -> {ca["ece"]:.4f}, on val '
            f'{calibration["also"]["val"]["before"]["ece"]:.4f} -> {after_val["ece"]:.4f}.')
        scaled_note = ''
    title = '' if args.family == 'gfl' else f': {fam["title"]}'
    segm_note = (' segm mAP is COCO mask mAP@[.5:.95] of the predicted instance masks against '
                 "each digit's ink pixels." if fam['segm'] else '')
    lines = [
        f'# mmkdcal demo on DigitsDet{title} ({mode} mode)', '', cal_line,
        f'TeacherCalibrationHook refitted inside each KD+cal run: T = '
        f'{", ".join(f"{t:.3f}" for t in fitted)}.', '',
        f'Evaluation on the val split ({len(seeds)} student seed(s): {seeds}'
        f'{"; mean ± std" if len(seeds) > 1 else ""}). mAP is COCO bbox mAP@[.5:.95]; '
        'D-ECE is the detection calibration error (10 confidence bins; D-ECE (box): x 10 x 10 '
        f'bins of relative box centre), of the detections scoring at least {thr}, matched to '
        f'ground truth at IoU 0.5.{segm_note}{scaled_note}', '', *table, '',
        f'Wall time: {(time.time() - t_start) / 60:.1f} min'
        + (f' (teacher calibration {wall["teacher"]["calibration"] / 60:.1f} min).'
           if 'calibration' in wall['teacher'] else '.'),
        f'Reliability diagram of the teacher before/after: `{cal_dir}/calibration.png`.']
    files = _written_files(work, teacher_ckpt, cal_dir, runs, seeds)
    lines += ['', 'Files written:', ''] + [f'- {what}: `{path}`' for what, path in files]
    md = '\n'.join(lines) + '\n'
    with open(osp.join(work, 'results.md'), 'w') as f:
        f.write(md)
    with open(osp.join(work, 'results.json'), 'w') as f:
        json.dump(dict(mode=mode, family=args.family, fit_on=fit_on, seeds=seeds,
                       teacher_iters=mode_cfg['teacher_iters'],
                       student_iters=mode_cfg['student_iters'], temperature=temperature,
                       calibration=calibration, hook_temperatures=fitted, summary=summary,
                       runs=rows, wall_s=wall, total_wall_s=time.time() - t_start,
                       files=dict(files)), f, indent=2)
    print('\n' + md)
    print(f'Wrote {osp.join(work, "results.md")} and {osp.join(work, "results.json")}; the '
          'files listed above hold the checkpoints, logs and reliability diagrams.')
    return summary


def _written_files(work, teacher_ckpt, cal_dir, runs, seeds):
    """``(what, path)`` of every file a user may want after the demo, as written."""
    files = [('teacher checkpoint', teacher_ckpt),
             ('teacher reliability diagram, calib split, before/after T',
              osp.join(cal_dir, 'calibration.png')),
             ('teacher calibration report', osp.join(cal_dir, 'calibration.json'))]
    for seed in seeds:
        for name, key, _, _ in runs:
            run_dir = osp.join(work, f'{key}_seed{seed}')
            last = osp.join(run_dir, 'last_checkpoint')
            if osp.isfile(last):
                with open(last) as f:
                    files.append((f'{name} checkpoint (seed {seed})', f.read().strip()))
            files.append((f'{name} val metrics (seed {seed})',
                          osp.join(run_dir, 'val_metrics.json')))
            hook_png = osp.join(run_dir, 'teacher_calibration.png')
            if osp.isfile(hook_png):
                files.append((f'{name}: the hook\'s reliability diagram (seed {seed})', hook_png))
    files.append(('logs of every step', osp.join(work, 'logs')))
    return ([('table (this summary)', osp.join(work, 'results.md')),  # written next
             ('all numbers', osp.join(work, 'results.json'))] +
            [(what, path) for what, path in files if osp.exists(path)])


if __name__ == '__main__':
    main()
