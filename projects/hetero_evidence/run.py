"""Any teacher for any student, on DigitsDet: KD across head families, with and without calibration.

Four pairs of a student and a teacher of another head family (docs/heterogeneous.md), the
students at ResNet-18 width 16 and the teachers at width 32 (configs/demo/):

- RetinaNet student, GFL teacher;
- GFL student, Cascade R-CNN teacher;
- Faster R-CNN student, Cascade R-CNN teacher (its last stage classifies the student's RoIs);
- Faster R-CNN student, GFL teacher (its detections are soft targets at the student's RoIs).

Each student is trained four ways with one seed and schedule: no KD (the student config), feature
KD (PKD on the FPN levels paired by stride, ``pkd_*``), prediction KD from the raw teacher
(``pred_*``, ``teacher_temperature=1.0``) and from the calibrated teacher (``pred-cal_*``,
``TeacherCalibrationHook`` fits T before training). Teachers and students are evaluated on the
val split (COCO bbox mAP, mAP50); ``<work-dir>/results.md`` and ``results.json`` hold the table,
the fitted temperatures, the machine and the wall times.

Every step is a project command (tools/train.py, tools/test.py) run through the tools' job
runner (tools/harness/jobs.py): a finished step leaves a stamp and is reused by the next run, so
an interrupted run resumes where it stopped.

    python projects/hetero_evidence/run.py --work-dir work_dirs/hetero_evidence
    python projects/hetero_evidence/run.py --quick --work-dir /tmp/he --data-root /tmp/digits
"""
import argparse
import json
import os
import os.path as osp
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)

from tools.demo import _calib_options, _json, _options, _say, test_job, train_job  # noqa: E402
from tools.harness.jobs import run_jobs  # noqa: E402
from tools.harness.machine import describe_machine  # noqa: E402


def _cfg(name: str) -> str:
    return osp.join(ROOT, 'configs/demo', name)


#: Each teacher: its config and the tools/demo.py family whose score-threshold keys it has.
TEACHERS = {
    'gfl': dict(title='GFL r18w32', cfg=_cfg('gfl_r18w32_digits.py'), family='gfl'),
    'cascade': dict(title='Cascade R-CNN r18w32', cfg=_cfg('cascade-rcnn_r18w32_digits.py'),
                    family='cascade_rcnn'),
}
#: Each pair: student title, teacher key, the tools/demo.py family of the student (its
#: score-threshold keys), the no-KD student config and the common stem of its three KD configs.
PAIRS = {
    'retinanet<-gfl': dict(student='RetinaNet r18w16', teacher='gfl', family='gfl',
                           cfg=_cfg('retinanet_r18w16_digits.py'),
                           stem='retinanet_r18w16_gfl-r18w32_digits.py'),
    'gfl<-cascade': dict(student='GFL r18w16', teacher='cascade', family='gfl',
                         cfg=_cfg('gfl_r18w16_digits.py'),
                         stem='gfl_r18w16_cascade-rcnn-r18w32_digits.py'),
    'faster<-cascade': dict(student='Faster R-CNN r18w16', teacher='cascade',
                            family='cascade_rcnn', cfg=_cfg('faster-rcnn_r18w16_digits.py'),
                            stem='faster-rcnn_r18w16_cascade-rcnn-r18w32_digits.py'),
    'faster<-gfl': dict(student='Faster R-CNN r18w16', teacher='gfl', family='cascade_rcnn',
                        cfg=_cfg('faster-rcnn_r18w16_digits.py'),
                        stem='faster-rcnn_r18w16_gfl-r18w32_digits.py'),
}
#: The four arms: label and the prefix of the config (None: the student config, no KD).
ARMS = [('no KD', 'none', None), ('feature KD (PKD)', 'pkd', 'pkd'),
        ('pred KD, raw teacher', 'pred', 'pred'),
        ('pred KD, calibrated teacher', 'pred_cal', 'pred-cal')]

#: Each mode: DigitsDet build parameters (empty: the default build), iterations of the teachers
#: and students, batch size (None: the configs'), default seeds, and the score threshold of the
#: test-time detections (quick mode keeps all: its barely trained models score low; its hook
#: also counts a detection as true at IoU 0.1, so that a 30-iteration teacher has positives).
MODES = {
    'quick': dict(data=dict(n_train=32, n_calib=16, n_val=16), teacher_iters=30,
                  student_iters=3, batch=4, seeds=[0], score_thr=0.0, hook_iou_thr=0.1),
    'default': dict(data=dict(), teacher_iters=400, student_iters=400, batch=None, seeds=[0],
                    score_thr=0.3),
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='KD across head families on DigitsDet')
    parser.add_argument('--quick', action='store_true', help='tiny data and schedules (tests)')
    parser.add_argument('--work-dir', default=osp.join(ROOT, 'work_dirs', 'hetero_evidence'))
    parser.add_argument('--data-root', default=osp.join(ROOT, 'data', 'digits_det'),
                        help='DigitsDet (built there when absent)')
    parser.add_argument('--seeds', type=int, nargs='+', default=None, help='student seeds')
    parser.add_argument('--jobs', type=int, default=2, help='steps run at once (default 2)')
    parser.add_argument('--retrain', action='store_true', help='rerun every step')
    parser.add_argument('--pkd-weights', type=float, nargs='+', default=(),
                        help='extra feature-KD arms, PKD at these loss weights (the configs: 6)')
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error('--jobs must be >= 1')
    return args


def build_jobs(mode_cfg, work, data_root, seeds, pkd_weights=()):
    """The jobs: teacher trainings and evaluations, then 4 pairs x 4 arms x seeds students (and
    one more arm per extra PKD loss weight)."""
    arms = ARMS + [(f'feature KD (PKD, weight {w:g})', f'pkd-w{w:g}', 'pkd', w)
                   for w in pkd_weights]

    def options(family, iters, seed=None, extra=()):
        # no validation inside the training (val_begin past the end): tools/test.py evaluates
        # each checkpoint once
        val = [] if iters is None else [f'train_cfg.val_begin={iters + 1}']
        return _options(mode_cfg, data_root, iters, seed=seed, extra=list(extra) + val,
                        family=family)

    jobs, runs = [], []
    for key, t in TEACHERS.items():
        t_dir = osp.join(work, f'teacher_{key}')
        jobs += [train_job(f'teacher_{key}', t['cfg'], t_dir,
                           options(t['family'], mode_cfg['teacher_iters'], seed=0)),
                 test_job(f'teacher_{key}', t['cfg'], t_dir, f'teacher_{key}_train',
                          options(t['family'], None))]
    for pair, p in PAIRS.items():
        teacher = TEACHERS[p['teacher']]
        t_train = f'teacher_{p["teacher"]}_train'
        for label, arm, prefix, *weight in arms:
            cfg = p['cfg'] if prefix is None else _cfg(f'{prefix}_{p["stem"]}')

            def extra(d, prefix=prefix, teacher=teacher, t_train=t_train, weight=weight):
                if prefix is None:
                    return []
                # the teacher as it was trained: the config its training dumped (in quick mode
                # with test-time score_thr 0, so that a barely trained teacher detects something)
                t_dir = osp.dirname(d[t_train]['checkpoint'])
                opts = [f'model.teacher_config={osp.join(t_dir, osp.basename(teacher["cfg"]))}',
                        f'model.teacher_ckpt={d[t_train]["checkpoint"]}']
                opts += [f'model.distill_losses.loss_pkd.loss_weight={w}' for w in weight]
                if prefix == 'pred-cal':
                    opts += _calib_options(mode_cfg, data_root, 'custom_hooks.0.dataloader.')
                    if mode_cfg['score_thr'] != 0.3:  # quick: every detection, loose matches
                        opts += [f'custom_hooks.0.score_thr={mode_cfg["score_thr"]}',
                                 f'custom_hooks.0.iou_thr={mode_cfg["hook_iou_thr"]}']
                return opts
            for seed in seeds:
                tag = f'{pair.replace("<-", "_from_")}_{arm}_seed{seed}'
                run_dir = osp.join(work, tag)
                jobs += [
                    train_job(tag, cfg, run_dir, lambda d, s=seed, e=extra, f=p['family']: options(
                        f, mode_cfg['student_iters'], seed=s, extra=e(d)),
                        deps=(t_train, ), stamp_deps=() if prefix is None else None),
                    test_job(tag, p['cfg'], run_dir, f'{tag}_train', options(p['family'], None))]
                runs.append(dict(pair=pair, arm=label, seed=seed, tag=tag, dir=run_dir,
                                 cal=prefix == 'pred-cal'))
    return jobs, runs


def _fmt(value):
    return 'n/a' if value is None else f'{value:.4f}'


def _wall(done, name):
    train, test = done[f'{name}_train'], done[f'{name}_test']
    return dict(train_s=None if train['_reused'] else train['_wall_s'], eval_s=test['_wall_s'])


def _minutes(wall):
    train = 'reused' if wall['train_s'] is None else f'{wall["train_s"] / 60:.1f}'
    return f'{train} + {wall["eval_s"] / 60:.1f}'


def collect(done, runs):
    """The table's rows (teachers, then students) from the finished jobs' results."""
    rows = []
    for key, t in TEACHERS.items():
        m = done[f'teacher_{key}_test']['metrics']
        rows.append(dict(pair='teacher', arm=t['title'], seed=0, mAP=m.get('coco/bbox_mAP'),
                         mAP50=m.get('coco/bbox_mAP_50'), temperature=None,
                         wall=_wall(done, f'teacher_{key}')))
    for r in runs:
        m = done[f'{r["tag"]}_test']['metrics']
        cal_json = osp.join(r['dir'], 'teacher_calibration.json')
        temperature = _json(cal_json)['temperature'] if r['cal'] else None
        rows.append(dict(pair=r['pair'], arm=r['arm'], seed=r['seed'],
                         mAP=m.get('coco/bbox_mAP'), mAP50=m.get('coco/bbox_mAP_50'),
                         temperature=temperature, wall=_wall(done, r['tag'])))
    return rows


def report(rows, mode, mode_cfg, seeds, total, where, work):
    """Write ``results.md`` and ``results.json`` into ``work``; return the markdown."""
    table = ['| student <- teacher | arm | seed | mAP | mAP50 | fitted T | '
             'wall (min): train + eval |', '|---|---|---|---|---|---|---|']
    for r in rows:
        t_cell = '-' if r['temperature'] is None else f'{r["temperature"]:.3f}'
        table.append(f'| {r["pair"]} | {r["arm"]} | {r["seed"]} | {_fmt(r["mAP"])} | '
                     f'{_fmt(r["mAP50"])} | {t_cell} | {_minutes(r["wall"])} |')
    iters = (f'teachers {mode_cfg["teacher_iters"]} iterations, students '
             f'{mode_cfg["student_iters"]}')
    md = '\n'.join([
        f'# KD across head families on DigitsDet ({mode} mode)', '',
        f'Students: ResNet-18 width 16; teachers: width 32 (configs/demo/). Schedules: {iters} '
        f'(the configs\' AdamW, warm-up and cosine decay); seeds {seeds}. COCO bbox mAP on the '
        'val split. "fitted T": the temperature TeacherCalibrationHook fitted on the calib split '
        'before the calibrated run (on detections for dense students, on first-stage RoIs for '
        'the Faster R-CNN student).', '', *table, '',
        f'Machine: {where}. Wall time of this run: {total / 60:.1f} min '
        '("reused": a step finished by an earlier run).', ''])
    with open(osp.join(work, 'results.md'), 'w') as f:
        f.write(md)
    with open(osp.join(work, 'results.json'), 'w') as f:
        json.dump(dict(mode=mode, seeds=seeds, teacher_iters=mode_cfg['teacher_iters'],
                       student_iters=mode_cfg['student_iters'], machine=where, rows=rows,
                       total_wall_s=total), f, indent=2)
    return md


def main(argv=None):
    args = parse_args(argv)
    mode = 'quick' if args.quick else 'default'
    mode_cfg = MODES[mode]
    work, data_root = osp.abspath(args.work_dir), osp.abspath(args.data_root)
    seeds = args.seeds or mode_cfg['seeds']
    os.makedirs(work, exist_ok=True)
    t_start = time.time()

    from mmkdcal.datasets import build_digits_det

    class _Log:
        info = staticmethod(_say)

    build_digits_det(data_root, logger=_Log(), **mode_cfg['data'])
    jobs, runs = build_jobs(mode_cfg, work, data_root, seeds, args.pkd_weights)
    done = run_jobs(jobs, ROOT, osp.join(work, 'logs'), workers=args.jobs, retrain=args.retrain,
                    say=_say, progress='hetero')

    rows = collect(done, runs)
    md = report(rows, mode, mode_cfg, seeds, time.time() - t_start, describe_machine(), work)
    print('\n' + md)
    return rows


if __name__ == '__main__':
    main()
