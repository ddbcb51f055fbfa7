"""The detection teacher-calibration study on DigitsDet: when does a calibrated teacher teach a
detector better?

Kim et al. (IEEE Access 2025) find, on classification, that a teacher's calibration error
predicts its student's accuracy, and that temperature-scaling the teacher before KD helps; for
detection they show only "KD + calibration beats KD". This study measures the detection
version of the correlation with the project's own pieces, on the embedded DigitsDet data:

1. train a family of teachers of varied calibration and accuracy from the demo's stock configs
   (``configs/demo/``): width and depth, schedule (including early-stopped ones), the
   classification loss (quality focal vs focal vs a softened target) and the head family (GFL,
   RetinaNet), each with ``tools/train.py``;
2. measure each on the calib split (:mod:`~.detection_teacher_measure`): COCO
   mAP, D-ECE and its over- and under-confident parts, and the temperature fitted for the NLL,
   ACE and ECE objectives (the calibration of ``tools/calibrate.py`` and the hook);
3. train, per teacher and seed, one KD student from the raw teacher and one from the teacher
   divided by its NLL temperature (``model.teacher_temperature``), the same student config
   and schedule throughout (one student config per head family, since a KD student's head
   must have its teacher's layout), plus a no-KD student per family and seed; on the most
   miscalibrated teachers, also students from the ACE and ECE temperatures;
4. summarise (:mod:`~.detection_study_summary`), plot
   (:mod:`~.detection_study_plots`) and write the report
   (:mod:`~.detection_study_report`).

The trainings run as parallel single-thread processes (:mod:`tools.harness.jobs`),
and finished runs are reused, so the study resumes where it stopped.
CLI: ``projects/teacher_studies/run_detection_study.py``.
"""
import argparse
import glob
import json
import os
import os.path as osp
import shutil
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

from tools.harness.jobs import Job, run_jobs
from tools.harness.machine import describe_machine

from .detection_teacher_measure import OBJECTIVES

__all__ = ['DetTeacher', 'DetStudyConfig', 'FAMILIES', 'MODES', 'default_teachers',
           'study_config', 'build_jobs', 'run_study', 'write_outputs', 'main']

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

#: Per head family: the student's config and its KD config (teacher given on the command line).
FAMILIES = {
    'gfl': dict(label='GFL', student='configs/demo/gfl_r18w16_digits.py',
                kd='configs/demo/kd_gfl_r18w16_r18w32_digits.py'),
    'retinanet': dict(label='RetinaNet', student='configs/demo/retinanet_r18w16_digits.py',
                      kd='configs/demo/kd_retinanet_r18w16_r18w32_digits.py'),
}
GFL_W32 = 'configs/demo/gfl_r18w32_digits.py'
RETINA_W32 = 'configs/demo/retinanet_r18w32_digits.py'
#: The study's own teacher configs (focal-loss variants, with this project's loss).
_OWN = 'projects/teacher_studies/configs/'
#: The teacher measurement, run as a module from the repository root.
MEASURE = 'projects.teacher_studies.studies.detection_teacher_measure'
#: Registers the softened-target loss in a KD run whose teacher was trained with it.
_KD_IMPORTS = ('custom_imports.imports=[mmkdcal,'
               'projects.teacher_studies.studies.soft_target_focal_loss]')


def _width(w: int) -> Tuple[str, ...]:
    """cfg-options that give the demo teacher a ResNet-18 layout of base width ``w``."""
    return (f'model.backbone.base_channels={w}',
            f'model.neck.in_channels=[{2 * w},{4 * w},{8 * w}]',
            f'model.neck.out_channels={2 * w}', f'model.bbox_head.in_channels={2 * w}',
            f'model.bbox_head.feat_channels={2 * w}')


@dataclass
class DetTeacher:
    """One teacher of the study.

    Args:
        name: Identifier (letters, digits, ``_``, ``-``).
        family: Head family, a key of :data:`FAMILIES`.
        config: Its config file (relative to the repository root).
        note: Plain-language description for the report.
        options: Extra ``--cfg-options`` (width, depth, loss parameters).
        schedule: Scheduled iterations as a multiple of the mode's teacher schedule.
        stop: Early stop: train only this fraction of the schedule (the learning-rate schedule
            is that of the full one, so the teacher stops before it has annealed); None: all.
    """
    name: str
    family: str
    config: str
    note: str
    options: Tuple[str, ...] = ()
    schedule: float = 1.0
    stop: Optional[float] = None

    def __post_init__(self) -> None:
        self.options = tuple(self.options)
        if not self.name or not self.name.replace('_', '').replace('-', '').isalnum():
            raise ValueError(f'DetTeacher `name` must be an identifier, got {self.name!r}.')
        if self.family not in FAMILIES:
            raise ValueError(f'DetTeacher {self.name}: `family` must be one of '
                             f'{sorted(FAMILIES)}, got {self.family!r}.')
        if not osp.isfile(osp.join(ROOT, self.config)):
            raise ValueError(f'DetTeacher {self.name}: config {self.config} does not exist.')
        if not self.schedule > 0 or (self.stop is not None and not 0 < self.stop <= 1):
            raise ValueError(f'DetTeacher {self.name}: need `schedule` > 0 and `stop` in (0, 1] '
                             f'or None, got {self.schedule!r} and {self.stop!r}.')


def default_teachers(quick: bool = False) -> List[DetTeacher]:
    """The teacher family: thirteen teachers (three in quick mode) of varied calibration.

    Args:
        quick: The test-sized family (two GFL teachers, one early-stopped, and a RetinaNet
            teacher with the softened target).

    Returns:
        list[DetTeacher]: In table order.
    """
    soft_gfl = _OWN + 'gfl_r18w32_soft-focal_digits.py'
    if quick:
        return [
            DetTeacher('gfl_qfl', 'gfl', GFL_W32, 'GFL, quality focal loss'),
            DetTeacher('gfl_qfl_stop50', 'gfl', GFL_W32, 'GFL, early-stopped at 50%',
                       stop=0.5),
            DetTeacher('retina_soft', 'retinanet', _OWN + 'retinanet_r18w32_soft-focal_digits.py',
                       'RetinaNet, focal loss towards 0.7'),
        ]
    return [
        DetTeacher('gfl_r18w32', 'gfl', GFL_W32, 'GFL, the demo teacher (QFL, IoU targets)'),
        DetTeacher('gfl_r18w48', 'gfl', GFL_W32, 'GFL, wider (base width 48)', _width(48)),
        DetTeacher('gfl_r34w32', 'gfl', GFL_W32, 'GFL, deeper (ResNet-34 layout)',
                   ('model.backbone.depth=34', )),
        DetTeacher('gfl_r18w32_stop25', 'gfl', GFL_W32,
                   'GFL, early-stopped at 25% of its schedule', stop=0.25),
        DetTeacher('gfl_r18w32_long', 'gfl', GFL_W32, 'GFL, 2x longer schedule', schedule=2.0),
        DetTeacher('gfl_r18w32_focal', 'gfl', _OWN + 'gfl_r18w32_focal_digits.py',
                   'GFL head, focal loss (hard targets)'),
        DetTeacher('gfl_r18w32_soft', 'gfl', soft_gfl, 'GFL head, focal loss towards 0.7'),
        DetTeacher('retina_r18w32', 'retinanet', RETINA_W32, 'RetinaNet, focal loss'),
        DetTeacher('retina_r18w32_soft', 'retinanet',
                   _OWN + 'retinanet_r18w32_soft-focal_digits.py',
                   'RetinaNet, focal loss towards 0.7'),
        DetTeacher('retina_r18w32_a75', 'retinanet', RETINA_W32,
                   'RetinaNet, focal loss with alpha 0.75 (positives weighted up)',
                   ('model.bbox_head.loss_cls.alpha=0.75', )),
        DetTeacher('retina_r18w32_g0', 'retinanet', RETINA_W32,
                   'RetinaNet, focal loss with gamma 0 (alpha-weighted cross-entropy)',
                   ('model.bbox_head.loss_cls.gamma=0.0', )),
        DetTeacher('retina_r18w32_g1', 'retinanet', RETINA_W32,
                   'RetinaNet, focal loss with gamma 1', ('model.bbox_head.loss_cls.gamma=1.0', )),
        DetTeacher('gfl_r18w32_focal_g0', 'gfl', _OWN + 'gfl_r18w32_focal_digits.py',
                   'GFL head, focal loss with gamma 0 (alpha-weighted cross-entropy)',
                   ('model.bbox_head.loss_cls.gamma=0.0', )),
    ]


@dataclass
class DetStudyConfig:
    """Everything that defines one run of the study.

    Args:
        mode: ``'full'`` or ``'quick'``.
        data: DigitsDet build parameters (``build_digits_det`` keyword arguments).
        teacher_iters: Teacher schedule (iterations) before :attr:`DetTeacher.schedule`.
        student_iters: Schedule of every student.
        batch: Training batch size (None: the configs' 16).
        seeds: Student seeds (every teacher is trained once, with seed 0).
        objective_teachers: On this many of the most miscalibrated teachers (largest D-ECE on
            calib), also train students from the ACE and ECE temperatures.
        objective_seeds: Seeds of those students.
        score_thr: Detections below this score are dropped by the models at test time and by
            the calibration pass.
        report_score_thr: D-ECE is also reported for detections scoring at least this.
        n_bins: Confidence bins of D-ECE.
        n_boot: Bootstrap resamples of the correlation and gain intervals.
        teachers: The teachers.
    """
    mode: str = 'full'
    data: Dict[str, int] = field(default_factory=dict)
    teacher_iters: int = 400
    student_iters: int = 200
    batch: Optional[int] = None
    seeds: Sequence[int] = (0, 1, 2)
    objective_teachers: int = 3
    objective_seeds: Sequence[int] = (0, 1, 2)
    score_thr: float = 0.05
    report_score_thr: float = 0.3
    n_bins: int = 10
    n_boot: int = 10000
    teachers: List[DetTeacher] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.seeds, self.objective_seeds = list(self.seeds), list(self.objective_seeds)
        if not self.seeds or not all(isinstance(s, int) for s in self.seeds):
            raise ValueError(f'DetStudyConfig `seeds` must be a non-empty list of ints, got '
                             f'{self.seeds!r}.')
        if not set(self.objective_seeds) <= set(self.seeds):
            raise ValueError('DetStudyConfig `objective_seeds` must be a subset of `seeds`.')
        for key in ('teacher_iters', 'student_iters'):
            if int(getattr(self, key)) < 8:
                raise ValueError(f'DetStudyConfig `{key}` must be >= 8, got '
                                 f'{getattr(self, key)!r}.')
        names = [t.name for t in self.teachers]
        if len(set(names)) != len(names):
            raise ValueError(f'Teacher names must be unique, got {names}.')
        if len(self.teachers) < 3:
            raise ValueError('The study needs at least 3 teachers (a correlation over fewer is '
                             'undefined).')
        if not 0 <= self.objective_teachers <= len(self.teachers):
            raise ValueError(f'`objective_teachers` must be in [0, {len(self.teachers)}], got '
                             f'{self.objective_teachers}.')


#: The two sizes of the study.
MODES = {
    'quick': dict(data=dict(n_train=48, n_calib=24, n_val=24), teacher_iters=32,
                  student_iters=16, batch=8, seeds=[0], objective_teachers=0,
                  objective_seeds=[], score_thr=0.0, n_boot=2000),
    'full': dict(data=dict(), teacher_iters=400, student_iters=200, batch=None,
                 seeds=[0, 1, 2], objective_teachers=3, objective_seeds=[0, 1, 2],
                 score_thr=0.05, n_boot=10000),
}


def study_config(mode: str = 'full', seeds: Optional[Sequence[int]] = None) -> DetStudyConfig:
    """The configuration of a mode (optionally with other seeds).

    Args:
        mode: A key of :data:`MODES`.
        seeds: Student seeds instead of the mode's (the objective students use all of them
            in full mode; quick mode has none).

    Returns:
        DetStudyConfig: The configuration.
    """
    if mode not in MODES:
        raise ValueError(f'mode must be one of {sorted(MODES)}, got {mode!r}.')
    kw = dict(MODES[mode])
    if seeds is not None:
        kw['seeds'] = list(seeds)
        kw['objective_seeds'] = list(seeds) if mode == 'full' else []
    return DetStudyConfig(mode=mode, teachers=default_teachers(mode == 'quick'), **kw)


# ------------------------------------------------------------------------------ options


def _data_options(cfg: DetStudyConfig, data_root: str) -> List[str]:
    """Point every split (and the evaluators) at ``data_root``; quick mode's thresholds."""
    opts = [f'data_root={data_root}/', 'default_hooks.visualization.draw=False']
    for split in ('train', 'val', 'test', 'calib'):
        opts.append(f'{split}_dataloader.dataset.data_root={data_root}/')
        opts += [f'{split}_dataloader.dataset.build_cfg.{k}={v}' for k, v in cfg.data.items()]
    opts += [f'val_evaluator.0.ann_file={data_root}/annotations/val.json',
             f'test_evaluator.0.ann_file={data_root}/annotations/val.json',
             f'model.test_cfg.score_thr={cfg.score_thr}']
    if cfg.score_thr < 0.3:  # barely trained quick models: keep D-ECE defined
        opts += [f'val_evaluator.1.score_thr={cfg.score_thr}',
                 f'test_evaluator.1.score_thr={cfg.score_thr}']
    if cfg.batch is not None:
        opts.append(f'train_dataloader.batch_size={cfg.batch}')
    return opts


def _schedule_options(iters: int, stop: Optional[int] = None) -> List[str]:
    """A schedule of ``iters`` iterations (warm-up 1/8, cosine), trained up to ``stop``."""
    warm, run = max(1, iters // 8), stop or iters
    return [f'train_cfg.max_iters={run}', f'train_cfg.val_interval={run}',
            f'default_hooks.checkpoint.interval={run}', 'default_hooks.logger.interval=20',
            f'param_scheduler.0.end={warm}', f'param_scheduler.1.begin={warm}',
            f'param_scheduler.1.end={iters}']


def teacher_iterations(cfg: DetStudyConfig, t: DetTeacher) -> Tuple[int, int]:
    """``(scheduled, trained)`` iterations of a teacher."""
    iters = max(8, round(cfg.teacher_iters * t.schedule))
    return iters, (max(1, round(iters * t.stop)) if t.stop is not None else iters)


# ------------------------------------------------------------------------------ results


def read_val_metrics(work_dir: str) -> Dict[str, float]:
    """The last validation of a training run, from MMEngine's ``vis_data/scalars.json``.

    Args:
        work_dir: The run's work dir.

    Returns:
        dict: ``map``, ``map50`` and ``dece`` of the student (or teacher) on the val split.
    """
    files = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))
    last = None
    for path in files:
        with open(path) as f:
            for line in f:
                rec = json.loads(line)
                if 'coco/bbox_mAP' in rec:
                    last = rec
    if last is None:
        raise RuntimeError(f'No validation result in {work_dir}/*/vis_data/scalars.json: the run '
                           'did not validate at its end (train_cfg.val_interval).')
    return dict(map=float(last['coco/bbox_mAP']), map50=float(last['coco/bbox_mAP_50']),
                dece=float(last.get('calib/dece', float('nan'))))


def _checkpoint(work_dir: str) -> str:
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        return f.read().strip()


def build_jobs(cfg: DetStudyConfig, work: str, data_root: str) -> List[Job]:
    """Every job of the study: teachers, their measurements, students.

    Args:
        cfg: The study configuration.
        work: The study's work dir.
        data_root: DigitsDet folder.

    Returns:
        list[Job]: Names ``teacher_<t>``, ``measure_<t>``, ``student_<family>_s<seed>``,
        ``kd_<t>_s<seed>_<raw|nll|ace|ece>``.
    """
    data = _data_options(cfg, data_root)
    jobs: List[Job] = []
    measure_names = [f'measure_{t.name}' for t in cfg.teachers]

    for t in cfg.teachers:
        iters, run = teacher_iterations(cfg, t)
        wd = osp.join(work, 'teachers', t.name)
        argv = ['tools/train.py', t.config, '--work-dir', wd, '--cfg-options', *data,
                *_schedule_options(iters, run), 'randomness.seed=0', *t.options]

        def collect_teacher(job: Job, deps: Dict[str, Any], t: DetTeacher = t) -> Dict[str, Any]:
            return dict(checkpoint=_checkpoint(job.work_dir),
                        config=osp.join(job.work_dir, osp.basename(t.config)),
                        val=read_val_metrics(job.work_dir))
        jobs.append(Job(f'teacher_{t.name}', wd, lambda deps, a=argv: a, collect_teacher,
                        priority=4))

        def measure_cmd(deps: Dict[str, Any], t: DetTeacher = t) -> List[str]:
            tr = deps[f'teacher_{t.name}']
            return ['-m', MEASURE, tr['config'], tr['checkpoint'],
                    '--out', osp.join(work, 'measure', t.name),
                    '--splits', 'calib', 'val', '--map-splits', 'calib',
                    '--score-thr', str(cfg.score_thr), '--n-bins', str(cfg.n_bins),
                    '--report-score-thr', str(cfg.report_score_thr)]

        def collect_measure(job: Job, deps: Dict[str, Any]) -> Dict[str, Any]:
            with open(osp.join(job.work_dir, 'measure.json')) as f:
                return json.load(f)
        jobs.append(Job(f'measure_{t.name}', osp.join(work, 'measure', t.name), measure_cmd,
                        collect_measure, deps=(f'teacher_{t.name}', ), priority=3))

    def collect_student(job: Job, deps: Dict[str, Any]) -> Dict[str, Any]:
        return read_val_metrics(job.work_dir)

    for family in sorted({t.family for t in cfg.teachers}):
        for seed in cfg.seeds:
            wd = osp.join(work, 'students', f'{family}_nokd_s{seed}')
            argv = ['tools/train.py', FAMILIES[family]['student'], '--work-dir', wd,
                    '--cfg-options', *data, *_schedule_options(cfg.student_iters),
                    f'randomness.seed={seed}']
            jobs.append(Job(f'student_{family}_s{seed}', wd, lambda deps, a=argv: a,
                            collect_student, priority=1,
                            meta=dict(family=family, teacher=None, variant='none', seed=seed)))

    def ranked(deps: Dict[str, Any]) -> List[str]:
        """Teachers by D-ECE on the calib split, most miscalibrated first."""
        d = {n[len('measure_'):]: deps[n]['splits']['calib']['before']['dece']
             for n in measure_names}
        return sorted(d, key=lambda n: -d[n])[:cfg.objective_teachers]

    for t in cfg.teachers:
        for seed in cfg.seeds:
            for variant in ('raw', ) + OBJECTIVES:
                if variant in ('ace', 'ece') and seed not in cfg.objective_seeds:
                    continue
                wd = osp.join(work, 'students', f'{t.name}_s{seed}_{variant}')
                deps = [f'teacher_{t.name}']
                if variant != 'raw':
                    deps += measure_names if variant in ('ace', 'ece') else [f'measure_{t.name}']

                def kd_cmd(deps: Dict[str, Any], t: DetTeacher = t, seed: int = seed,
                           variant: str = variant, wd: str = wd) -> Optional[List[str]]:
                    if variant in ('ace', 'ece') and t.name not in ranked(deps):
                        return None
                    temp = (1.0 if variant == 'raw' else
                            deps[f'measure_{t.name}']['temperatures'][variant])
                    tr = deps[f'teacher_{t.name}']
                    return ['tools/train.py', FAMILIES[t.family]['kd'], '--work-dir', wd,
                            '--cfg-options', *data, *_schedule_options(cfg.student_iters),
                            f'randomness.seed={seed}', f"model.teacher_config={tr['config']}",
                            f"model.teacher_ckpt={tr['checkpoint']}",
                            f'model.teacher_temperature={temp!r}', _KD_IMPORTS]
                # the other teachers' measurements only decide whether an ACE/ECE student
                # runs: adding a teacher must not rerun the finished ones
                jobs.append(Job(f'kd_{t.name}_s{seed}_{variant}', wd, kd_cmd, collect_student,
                                deps=tuple(deps), priority=2 if variant in ('raw', 'nll') else 0,
                                meta=dict(family=t.family, teacher=t.name, variant=variant,
                                          seed=seed),
                                stamp_deps=tuple(d for d in deps if d in (
                                    f'teacher_{t.name}', f'measure_{t.name}'))))
    return jobs


def run_study(cfg: DetStudyConfig, work: str, data_root: str, workers: int = 2,
              retrain: bool = False, say: Any = print) -> Dict[str, Any]:
    """Build the data, run every job (reusing finished ones) and gather the raw results.

    Args:
        cfg: The study configuration.
        work: Work dir (all outputs go below it).
        data_root: DigitsDet folder (built if absent).
        workers: Parallel single-thread processes.
        retrain: Rerun every job.
        say: Progress printer.

    Returns:
        dict: ``config``, ``teachers`` (per teacher: its definition, schedule, ``val`` metrics,
        ``measure``), ``students`` (one record per student: ``family``, ``teacher`` (None for
        no KD), ``variant`` (``'none'``, ``'raw'`` or an objective), ``seed``,
        ``temperature``, ``map``, ``map50``, ``dece``, ``wall_s``), ``machine`` and timings.
    """
    from mmkdcal.datasets import build_digits_det  # imports mmdet

    t0 = time.time()
    say(f'== DigitsDet in {data_root}')
    build_digits_det(data_root, **cfg.data)
    jobs = build_jobs(cfg, work, data_root)
    say(f'== {len(jobs)} jobs, {workers} at a time (logs in {osp.join(work, "logs")})')
    res = run_jobs(jobs, ROOT, osp.join(work, 'logs'), workers=workers, retrain=retrain, say=say)
    teachers = []
    for t in cfg.teachers:
        tr, ms = res[f'teacher_{t.name}'], res[f'measure_{t.name}']
        iters, run = teacher_iterations(cfg, t)
        teachers.append(dict(asdict(t), scheduled_iters=iters, trained_iters=run,
                             checkpoint=tr['checkpoint'], val=tr['val'], measure=ms,
                             train_wall_s=tr['_wall_s'], measure_wall_s=ms['_wall_s']))
    students = []
    for job in jobs:
        r = res[job.name]
        if r.get('skipped') or 'variant' not in job.meta:
            continue
        rec = dict(job.meta, temperature=None)
        if rec['variant'] != 'none':
            rec['temperature'] = (1.0 if rec['variant'] == 'raw' else res[
                f"measure_{rec['teacher']}"]['temperatures'][rec['variant']])
        rec.update(map=r['map'], map50=r['map50'], dece=r['dece'], wall_s=r['_wall_s'])
        students.append(rec)
    run_walls = [r['_wall_s'] for r in res.values() if not r.get('skipped')]
    return dict(config=asdict(cfg), teachers=teachers, students=students,
                machine=describe_machine(), workers=workers,
                process_time_s=round(sum(run_walls), 1), n_runs=len(run_walls),
                n_reused=sum(1 for r in res.values() if r.get('_reused')),
                wall_time_s=round(time.time() - t0, 1))


def _json_default(o: Any) -> Any:
    if isinstance(o, tuple):
        return list(o)
    if hasattr(o, 'item'):
        return o.item()
    raise TypeError(f'not JSON serialisable: {type(o).__name__}')


#: Files the study writes into its work dir (and, with ``--publish``, into docs/).
FIGURES = ('detection_teacher_study_dece_vs_student.png', 'detection_teacher_study_gain.png')
REPORT = 'detection_teacher_study.md'


def write_outputs(results: Dict[str, Any], work: str, publish: bool = False,
                  say: Any = print) -> Dict[str, Any]:
    """Summarise, plot, write ``results.json`` and the report; optionally publish to docs/.

    Args:
        results: Output of :func:`run_study`.
        work: Work dir.
        publish: Also write ``docs/detection_teacher_study.md`` and its figures into
            ``docs/figures/``.
        say: Progress printer.

    Returns:
        dict: The summarised results (as written to ``results.json``).
    """
    from .detection_study_plots import plot_dece_vs_student, plot_gain
    from .detection_study_report import write_markdown
    from .detection_study_summary import summarize

    results = summarize(results)
    plot_dece_vs_student(results, osp.join(work, FIGURES[0]))
    plot_gain(results, osp.join(work, FIGURES[1]))
    with open(osp.join(work, 'results.json'), 'w') as f:
        json.dump(results, f, indent=1, default=_json_default)
    write_markdown(results, osp.join(work, REPORT), figures=FIGURES)
    say(f'wrote {work}/results.json, {REPORT}, {", ".join(FIGURES)}')
    if publish:
        docs = osp.join(ROOT, 'docs')
        os.makedirs(osp.join(docs, 'figures'), exist_ok=True)
        for fig in FIGURES:
            shutil.copyfile(osp.join(work, fig), osp.join(docs, 'figures', fig))
        write_markdown(results, osp.join(docs, REPORT),
                       figures=tuple(f'figures/{f}' for f in FIGURES))
        say(f'published docs/{REPORT} and docs/figures/{{{",".join(FIGURES)}}}')
    return results


def _wall_log(work: str, wall_s: float, n_runs: int, n_reused: int) -> List[Dict[str, Any]]:
    """Append this invocation's wall time to ``<work>/invocations.json``; return all of them."""
    path = osp.join(work, 'invocations.json')
    log = []
    if osp.isfile(path):
        with open(path) as f:
            log = json.load(f)
    log.append(dict(finished=time.strftime('%Y-%m-%d %H:%M:%S'), wall_s=wall_s, runs=n_runs,
                    reused=n_reused))
    with open(path, 'w') as f:
        json.dump(log, f, indent=1)
    return log


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    """Command line: run (or resume) the study and write its outputs into ``--work-dir``.

    Args:
        argv: Arguments (default: ``sys.argv[1:]``).

    Returns:
        dict: The summarised results.
    """
    parser = argparse.ArgumentParser(
        description='Detection teacher-calibration study on DigitsDet: teacher calibration vs '
        'KD student mAP, KD from the raw vs the calibrated teacher.')
    parser.add_argument('--quick', action='store_true',
                        help='test-sized: 3 teachers, tiny data and schedules, 1 seed, no '
                        'objective students')
    parser.add_argument('--work-dir', default=None, help='default: work_dirs/det_study '
                        '(work_dirs/det_study_quick with --quick)')
    parser.add_argument('--data-root', default=None, help='default: data/digits_det '
                        '(<work-dir>/data with --quick)')
    parser.add_argument('--seeds', type=int, nargs='+', default=None,
                        help='student seeds (default 0 1 2, or 0 with --quick)')
    parser.add_argument('--workers', type=int, default=2,
                        help='trainings run at once, one torch thread each (default 2)')
    parser.add_argument('--retrain', action='store_true',
                        help='rerun everything, even the runs the work dir already holds')
    parser.add_argument('--replot', action='store_true',
                        help='no training: re-summarise <work-dir>/results.json and rewrite the '
                        'report and figures')
    parser.add_argument('--publish', action='store_true',
                        help='also write docs/detection_teacher_study.md and docs/figures/')
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error(f'--workers must be >= 1, got {args.workers}')
    mode = 'quick' if args.quick else 'full'
    work = osp.abspath(args.work_dir or osp.join(ROOT, 'work_dirs',
                                                 'det_study_quick' if args.quick else 'det_study'))
    os.makedirs(work, exist_ok=True)
    if args.replot:
        src = osp.join(work, 'results.json')
        if not osp.isfile(src):
            raise FileNotFoundError(f'--replot reads {src}, which does not exist: run the study '
                                    'into this --work-dir first.')
        with open(src) as f:
            return write_outputs(json.load(f), work, args.publish)
    cfg = study_config(mode, args.seeds)
    data_root = osp.abspath(args.data_root or (osp.join(work, 'data') if args.quick else
                                               osp.join(ROOT, 'data', 'digits_det')))
    results = run_study(cfg, work, data_root, workers=args.workers, retrain=args.retrain)
    results['invocations'] = _wall_log(work, results['wall_time_s'], results['n_runs'],
                                       results['n_reused'])
    results['command'] = ('python projects/teacher_studies/run_detection_study.py'
                          + (' --quick' if args.quick else '')
                          + (f' --seeds {" ".join(map(str, args.seeds))}' if args.seeds else '')
                          + f' --workers {args.workers}')
    return write_outputs(results, work, args.publish)
