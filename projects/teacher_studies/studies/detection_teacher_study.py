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
   and each calibrator (temperature, per-class temperature, Platt, isotonic, ``auto``) fitted
   on the calib split and reported on its halves and on val, its state saved;
3. train, per teacher and seed, one KD student from the raw teacher, one from the teacher
   divided by its NLL temperature (``model.teacher_temperature``; the ``temperature``
   calibrator) and one through each other calibrator's saved state
   (``TeacherCalibrationHook(calibrator_file=...)``); ``auto``'s student is the
   student of the calibrator it chose (the same state, seed and batches), trained apart only
   if its state differs. The same student config and schedule throughout (one student config
   per head family, since a KD student's head must have its teacher's layout), plus a no-KD
   student per family and seed; on the most miscalibrated teachers, also students from the ACE
   and ECE temperatures; with ``long_iters``, the same comparison with a longer student
   schedule on four teachers chosen by :func:`long_arm_teachers`;
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

from .detection_study_summary import CAL_VARIANTS
from .detection_teacher_measure import MEASURE_VERSION, OBJECTIVES

__all__ = ['DetTeacher', 'DetStudyConfig', 'FAMILIES', 'MODES', 'CAL_VARIANTS',
           'default_teachers', 'study_config', 'long_arm_teachers', 'build_jobs', 'run_study',
           'write_outputs', 'main']

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

#: Per head family: the student's config and its KD config (teacher given on the command line).
FAMILIES = {
    'gfl': dict(label='GFL', student='configs/demo/gfl_r18w16_digits.py',
                kd='configs/demo/kd_gfl_r18w16_r18w32_digits.py',
                kd_given='projects/teacher_studies/configs/'
                'kd-given-cal_gfl_r18w16_r18w32_digits.py'),
    'retinanet': dict(label='RetinaNet', student='configs/demo/retinanet_r18w16_digits.py',
                      kd='configs/demo/kd_retinanet_r18w16_r18w32_digits.py',
                      kd_given='projects/teacher_studies/configs/'
                      'kd-given-cal_retinanet_r18w16_r18w32_digits.py'),
}
#: The variants whose KD run loads a saved calibrator state.
_GIVEN = ('class_temperature', 'platt', 'isotonic', 'auto')
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
        long_iters: The long-schedule arm's student iterations (None: no long arm).
        long_teachers: Teachers of the long arm (:func:`long_arm_teachers`).
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
    long_iters: Optional[int] = None
    long_teachers: int = 4
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
        if self.long_iters is not None and int(self.long_iters) < 8:
            raise ValueError(f'DetStudyConfig `long_iters` (--long-iters) must be >= 8 or None, '
                             f'got {self.long_iters!r}.')
        if not 1 <= self.long_teachers <= len(self.teachers):
            raise ValueError(f'DetStudyConfig `long_teachers` must be in [1, '
                             f'{len(self.teachers)}], got {self.long_teachers!r}.')
        if not 0 <= self.objective_teachers <= len(self.teachers):
            raise ValueError(f'`objective_teachers` must be in [0, {len(self.teachers)}], got '
                             f'{self.objective_teachers}.')


#: The two sizes of the study.
MODES = {
    'quick': dict(data=dict(n_train=48, n_calib=24, n_val=24), teacher_iters=32,
                  student_iters=16, batch=8, seeds=[0], objective_teachers=0,
                  objective_seeds=[], score_thr=0.0, n_boot=2000, long_teachers=2),
    'full': dict(data=dict(), teacher_iters=400, student_iters=200, batch=None,
                 seeds=[0, 1, 2], objective_teachers=3, objective_seeds=[0, 1, 2],
                 score_thr=0.05, n_boot=10000, long_teachers=4),
}


def study_config(mode: str = 'full', seeds: Optional[Sequence[int]] = None,
                 long_iters: Optional[int] = None) -> DetStudyConfig:
    """The configuration of a mode (optionally with other seeds, and the long arm).

    Args:
        mode: A key of :data:`MODES`.
        seeds: Student seeds instead of the mode's (the objective students use all of them
            in full mode; quick mode has none).
        long_iters: Student iterations of the long-schedule arm (None: no long arm).

    Returns:
        DetStudyConfig: The configuration.
    """
    if mode not in MODES:
        raise ValueError(f'mode must be one of {sorted(MODES)}, got {mode!r}.')
    kw = dict(MODES[mode])
    if seeds is not None:
        kw['seeds'] = list(seeds)
        kw['objective_seeds'] = list(seeds) if mode == 'full' else []
    return DetStudyConfig(mode=mode, teachers=default_teachers(mode == 'quick'),
                          long_iters=long_iters, **kw)


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


def long_arm_teachers(measures: Dict[str, Dict[str, Any]], n: int = 4) -> List[str]:
    """The teachers of the long-schedule arm, chosen from their calib-split measurements.

    The rule: the direction of a teacher is the sign of D-ECE over - under before calibration
    (the mean score minus the precision of its detections); the ``n // 2`` most over-confident
    teachers (largest over - under) and the ``n - n // 2`` most under-confident ones (largest
    under - over) are chosen; a direction with too few teachers leaves its places to the
    remaining teachers with the largest ``|over - under|``. Ties go to the earlier teacher.

    Args:
        measures: Teacher name -> its ``measure.json`` (in table order).
        n: How many teachers.

    Returns:
        list[str]: The chosen teachers, in table order.
    """
    names = list(measures)
    signed = {k: m['splits']['calib']['before']['dece_over']
              - m['splits']['calib']['before']['dece_under'] for k, m in measures.items()}
    over = sorted((k for k in names if signed[k] > 0), key=lambda k: -signed[k])[:n // 2]
    under = sorted((k for k in names if signed[k] <= 0), key=lambda k: signed[k])[:n - n // 2]
    rest = sorted((k for k in names if k not in over + under), key=lambda k: -abs(signed[k]))
    chosen = set(over + under + rest[:max(0, n - len(over) - len(under))])
    return [k for k in names if k in chosen]


def _kd_argv(cfg: DetStudyConfig, t: DetTeacher, seed: int, variant: str, deps: Dict[str, Any],
             data: List[str], iters: int, wd: str) -> Optional[List[str]]:
    """The ``tools/train.py`` argv of a KD student of ``t``: the raw teacher, a temperature
    (``nll``, ``ace``, ``ece``) or a saved calibrator state (:data:`_GIVEN`); None for an
    ``auto`` student whose state is that of the calibrator it chose (that student is its)."""
    tr = deps[f'teacher_{t.name}']
    common = ['--work-dir', wd, '--cfg-options', *data, *_schedule_options(iters),
              f'randomness.seed={seed}', f"model.teacher_config={tr['config']}",
              f"model.teacher_ckpt={tr['checkpoint']}"]
    if variant not in _GIVEN:
        temp = 1.0 if variant == 'raw' else deps[f'measure_{t.name}']['temperatures'][variant]
        return ['tools/train.py', FAMILIES[t.family]['kd'], *common,
                f'model.teacher_temperature={temp!r}', _KD_IMPORTS]
    rec = deps[f'measure_{t.name}']['calibrators'][variant]
    if rec.get('same_state_as'):
        return None
    return ['tools/train.py', FAMILIES[t.family]['kd_given'], *common,
            f"custom_hooks.0.calibrator_file={rec['state_file']}",
            f"custom_hooks.0.calibrator_sha256={rec['sha256']}", _KD_IMPORTS]


def build_jobs(cfg: DetStudyConfig, work: str, data_root: str) -> List[Job]:
    """Every job of the study: teachers, their measurements, students.

    Args:
        cfg: The study configuration.
        work: The study's work dir.
        data_root: DigitsDet folder.

    Returns:
        list[Job]: Names ``teacher_<t>``, ``measure_<t>``, ``student_<family>_s<seed>``,
        ``kd_<t>_s<seed>_<raw|nll|ace|ece|class_temperature|platt|isotonic|auto>`` and, with
        ``long_iters``, ``long_student_<family>_s<seed>`` and
        ``long_kd_<t>_s<seed>_<raw|nll|class_temperature|platt|isotonic|auto>`` (skipped
        unless the teacher is one of :func:`long_arm_teachers`).
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
        # a measurement is cheap and its command names no code: one of an older content
        # version (e.g. without the calibrators) is redone under the same stamp
        jobs.append(Job(f'measure_{t.name}', osp.join(work, 'measure', t.name), measure_cmd,
                        collect_measure, deps=(f'teacher_{t.name}', ), priority=3,
                        reusable=lambda r: r.get('version') == MEASURE_VERSION))

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

    def long_chosen(deps: Dict[str, Any]) -> List[str]:
        return long_arm_teachers({t.name: deps[f'measure_{t.name}'] for t in cfg.teachers},
                                 cfg.long_teachers)

    variants = ('raw', ) + OBJECTIVES + _GIVEN
    for t in cfg.teachers:
        for seed in cfg.seeds:
            for variant in variants:
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
                    return _kd_argv(cfg, t, seed, variant, deps, data, cfg.student_iters, wd)
                # the other teachers' measurements only decide whether an ACE/ECE student
                # runs: adding a teacher must not rerun the finished ones
                jobs.append(Job(f'kd_{t.name}_s{seed}_{variant}', wd, kd_cmd, collect_student,
                                deps=tuple(deps), priority=0 if variant in ('ace', 'ece') else 2,
                                meta=dict(family=t.family, teacher=t.name, variant=variant,
                                          seed=seed),
                                stamp_deps=tuple(d for d in deps if d in (
                                    f'teacher_{t.name}', f'measure_{t.name}'))))
    if cfg.long_iters is None:
        return jobs
    # the long arm: its teachers are chosen from every measurement, but only a student's own
    # teacher enters its stamp (as for the ACE/ECE students)
    for family in sorted({t.family for t in cfg.teachers}):
        for seed in cfg.seeds:
            wd = osp.join(work, 'students_long', f'{family}_nokd_s{seed}')

            def long_floor(deps: Dict[str, Any], family: str = family, seed: int = seed,
                           wd: str = wd) -> Optional[List[str]]:
                chosen = {t.family for t in cfg.teachers if t.name in long_chosen(deps)}
                if family != 'gfl' and family not in chosen:  # GFL's floor is the yardstick
                    return None
                return ['tools/train.py', FAMILIES[family]['student'], '--work-dir', wd,
                        '--cfg-options', *data, *_schedule_options(cfg.long_iters),
                        f'randomness.seed={seed}']
            jobs.append(Job(f'long_student_{family}_s{seed}', wd, long_floor, collect_student,
                            deps=tuple(measure_names), stamp_deps=(), priority=-1,
                            meta=dict(family=family, teacher=None, variant='none', seed=seed,
                                      schedule='long')))
    for t in cfg.teachers:
        for seed in cfg.seeds:
            for variant in ('raw', 'nll') + _GIVEN:
                wd = osp.join(work, 'students_long', f'{t.name}_s{seed}_{variant}')

                def long_kd(deps: Dict[str, Any], t: DetTeacher = t, seed: int = seed,
                            variant: str = variant, wd: str = wd) -> Optional[List[str]]:
                    if t.name not in long_chosen(deps):
                        return None
                    return _kd_argv(cfg, t, seed, variant, deps, data, cfg.long_iters, wd)
                jobs.append(Job(f'long_kd_{t.name}_s{seed}_{variant}', wd, long_kd,
                                collect_student, deps=(f'teacher_{t.name}', *measure_names),
                                stamp_deps=(f'teacher_{t.name}', f'measure_{t.name}'),
                                priority=-1, meta=dict(family=t.family, teacher=t.name,
                                                       variant=variant, seed=seed,
                                                       schedule='long')))
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
        ``measure``), ``students`` (:func:`_student_records`), ``long_teachers``, ``machine``
        and timings.
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
    students = _student_records(jobs, res)
    long_teachers = (long_arm_teachers({t.name: res[f'measure_{t.name}'] for t in cfg.teachers},
                                       cfg.long_teachers) if cfg.long_iters else [])
    run_walls = [r['_wall_s'] for r in res.values() if not r.get('skipped')]
    return dict(config=asdict(cfg), teachers=teachers, students=students,
                long_teachers=long_teachers,
                machine=describe_machine(), workers=workers,
                process_time_s=round(sum(run_walls), 1), n_runs=len(run_walls),
                n_reused=sum(1 for r in res.values() if r.get('_reused')),
                wall_time_s=round(time.time() - t0, 1))


def _student_records(jobs: Sequence[Job], res: Dict[str, Any]) -> List[Dict[str, Any]]:
    """One record per student: ``family``, ``teacher`` (None for no KD), ``variant``
    (``'none'``, ``'raw'``, an objective or a calibrator of :data:`_GIVEN`), ``seed``,
    ``schedule`` (``'short'`` or ``'long'``), ``temperature`` (a temperature arm's T, else
    None), ``same_as`` (an ``auto`` student that is the student of the calibrator it chose:
    that calibrator's variant), ``map``, ``map50``, ``dece``, ``wall_s``."""
    out = []
    for job in jobs:
        if 'variant' not in job.meta:
            continue
        meta = dict(job.meta, schedule=job.meta.get('schedule', 'short'), same_as=None,
                    temperature=None)
        variant, r = meta['variant'], res[job.name]
        if variant not in ('none', 'raw'):
            ms = res[f"measure_{meta['teacher']}"]
            cal = ms['calibrators'].get(variant)
            meta['temperature'] = (ms['temperatures'][variant] if cal is None else
                                   cal.get('temperature'))
            if r.get('skipped') and cal is not None and cal.get('same_state_as'):
                meta['same_as'] = CAL_VARIANTS[cal['same_state_as']]
                twin = job.name[:-len(variant)] + meta['same_as']
                r = res.get(twin, dict(skipped=True))
        elif variant == 'raw':
            meta['temperature'] = 1.0
        if r.get('skipped'):
            continue
        out.append(dict(meta, map=r['map'], map50=r['map50'], dece=r['dece'],
                        wall_s=0.0 if meta['same_as'] else r['_wall_s']))
    return out


def _json_default(o: Any) -> Any:
    if isinstance(o, tuple):
        return list(o)
    if hasattr(o, 'item'):
        return o.item()
    raise TypeError(f'not JSON serialisable: {type(o).__name__}')


#: Files the study writes into its work dir (and, with ``--publish``, into docs/).
FIGURES = ('detection_teacher_study_dece_vs_student.png', 'detection_teacher_study_gain.png',
           'detection_teacher_study_calibrators.png')
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
    from .detection_study_plots import plot_calibrators, plot_dece_vs_student, plot_gain
    from .detection_study_report import write_markdown
    from .detection_study_summary import summarize

    results = summarize(results)
    plot_dece_vs_student(results, osp.join(work, FIGURES[0]))
    plot_gain(results, osp.join(work, FIGURES[1]))
    plot_calibrators(results, osp.join(work, FIGURES[2]))
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
    parser.add_argument('--long-iters', type=int, default=None,
                        help='also run the long-schedule arm: students of this many iterations '
                        'on 4 teachers (2 most over-, 2 most under-confident on calib); pick it '
                        'so that the no-KD GFL student reaches 0.30 val mAP')
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
    cfg = study_config(mode, args.seeds, args.long_iters)
    data_root = osp.abspath(args.data_root or (osp.join(work, 'data') if args.quick else
                                               osp.join(ROOT, 'data', 'digits_det')))
    results = run_study(cfg, work, data_root, workers=args.workers, retrain=args.retrain)
    results['invocations'] = _wall_log(work, results['wall_time_s'], results['n_runs'],
                                       results['n_reused'])
    results['command'] = ('python projects/teacher_studies/run_detection_study.py'
                          + (' --quick' if args.quick else '')
                          + (f' --seeds {" ".join(map(str, args.seeds))}' if args.seeds else '')
                          + (f' --long-iters {args.long_iters}' if args.long_iters else '')
                          + f' --workers {args.workers}')
    return write_outputs(results, work, args.publish)
