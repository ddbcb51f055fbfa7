"""Teacher-calibration study on real handwritten digits.

Reproduces, at a small scale, the study of Kim, Park, Lee, Kwak, "The Role of Teacher Calibration
in Knowledge Distillation" (IEEE Access 2025, arXiv 2508.20224): a family of teachers of varied
calibration is trained on scikit-learn's bundled digits (1797 real 8x8 scans, Alpaydin &
Kaynak, UCI 1998); each teacher is measured (accuracy, ECE, ACE, ECE_o/ECE_u, NLL), temperature
scaled with a temperature ``T_cal`` fitted by NLL on a held-out calibration split, and the same
student is distilled from it twice, from the raw logits ``z`` and from the calibrated logits
``z / T_cal``, with plain KD (Hinton et al., 2015):

    L = w_ce * CE(s, y) + w_kd * tau^2 KL(softmax(z' / tau) || softmax(s / tau)),
    z' = z (raw) or z / T_cal (calibrated).

The study then reports the correlation (Pearson, Spearman) of the teachers' calibration error and
accuracy with their students' accuracy, and the gain of calibrating the teacher, split by the
direction of its miscalibration (``T_cal > 1``: over-confident, ``T_cal < 1``: under-confident).

Everything is plain torch (small MLPs, full-batch evaluation); the metrics come from
:mod:`mmkdcal.calibration` and the KD loss is :class:`mmkdcal.models.losses.KDLoss`.

This module holds the study's configuration, the run and the command line; its pieces live in
:mod:`~.digits_classifiers` (data, models, training, teacher metrics),
:mod:`~.teacher_calibration_summary` (statistics of the runs),
:mod:`~.teacher_calibration_plots` (the figure) and
:mod:`~.teacher_calibration_report` (the markdown report).
"""
import json
import os
import os.path as osp
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import torch

from mmkdcal.utils.progress import EtaProgress
from tools.harness.machine import describe_machine

from .digits_classifiers import (FAMILIES, N_CLASSES, TrainRecipe, accuracy, default_student_recipe,
                                 default_teacher_recipes, load_digit_splits, predict_logits,
                                 shift_augment, teacher_metrics, train_classifier)
from .teacher_calibration_plots import plot_study
from .teacher_calibration_report import write_markdown
from .teacher_calibration_summary import correlation_table, summarize

__all__ = [
    'StudyConfig', 'TrainRecipe', 'run_study', 'summarize', 'correlation_table', 'main'
]


@dataclass
class StudyConfig:
    """Everything that defines one run of the study.

    Args:
        seeds: Seeds; each seed retrains every teacher and every student (teacher seed =
            student seed), on the same data split.
        split_seed: Seed of the train / calibration / test split (fixed across seeds).
        n_cal: Size of the held-out calibration split (used only to fit ``T_cal``).
        n_test: Size of the test split.
        n_bins: Bins of ECE / ACE (equal-width / equal-mass).
        tau: KD softening temperature (the same for every student).
        ce_weight: Weight of the student's cross-entropy.
        kd_weight: Weight of the KD loss.
        teachers: Teacher recipes.
        student: Student recipe (one architecture and schedule for all students).
    """
    seeds: Sequence[int] = (0, 1, 2, 3)
    split_seed: int = 0
    n_cal: int = 400
    n_test: int = 600
    n_bins: int = 15
    tau: float = 4.0
    ce_weight: float = 0.1
    kd_weight: float = 0.9
    teachers: List[TrainRecipe] = field(default_factory=list)
    student: Optional[TrainRecipe] = None

    def __post_init__(self) -> None:
        if not all(isinstance(s, int) for s in self.seeds):
            raise TypeError(f'StudyConfig `seeds` must be ints, got {list(self.seeds)!r}.')
        if not (isinstance(self.n_bins, int) and self.n_bins >= 2):
            raise ValueError(f'StudyConfig `n_bins` must be an int >= 2, got {self.n_bins!r}.')
        if not self.tau > 0:
            raise ValueError(f'StudyConfig `tau` must be > 0, got {self.tau!r}.')
        if self.ce_weight < 0 or self.kd_weight <= 0:
            raise ValueError('StudyConfig needs `ce_weight` >= 0 and `kd_weight` > 0 (a student '
                             f'without KD is the baseline), got {self.ce_weight!r} and '
                             f'{self.kd_weight!r}.')


def run_study(config: StudyConfig, out_dir: Optional[str] = None,
              log: Any = print) -> Dict[str, Any]:
    """Train the teachers and students of every seed and gather the raw numbers.

    For each seed ``s`` and teacher recipe: train the teacher (seed ``s``), measure it with
    :func:`~.digits_classifiers.teacher_metrics`, then distil the student
    (seed ``s``) from its raw logits and from its logits divided by ``T_cal``, with identical
    initialisation and batches. A student
    without KD (cross-entropy only, weight 1) is trained once per seed as the baseline.

    Args:
        config: The study configuration.
        out_dir: If given, the teachers' calibration and test logits are saved to
            ``out_dir/logits.npz`` (keys ``y_cal``, ``y_test``, ``s{seed}/{teacher}/cal`` and
            ``s{seed}/{teacher}/test``) so that every metric can be recomputed.
        log: Progress printer.

    Returns:
        dict: ``config``, ``runs`` (one record per seed and teacher: the teacher metrics,
        ``kd_acc`` / ``kd_conf`` / ``kd_conf_scaled`` (the teacher's accuracy and mean top-label
        confidence, raw and scaled, on the student's training images, where KD queries it) and
        ``student_acc_raw`` / ``student_acc_cal``), ``baseline`` (student accuracy without KD
        per seed), ``machine`` and ``wall_time_s``.
    """
    from mmkdcal.models.losses import KDLoss  # imports mmdet (registry)

    if not config.teachers or config.student is None:
        raise ValueError('StudyConfig needs `teachers` (a non-empty list of TrainRecipe) and a '
                         '`student` TrainRecipe.')
    names = [r.name for r in config.teachers]
    if len(set(names)) != len(names):
        raise ValueError(f'Teacher recipe names must be unique, got {names}.')
    if not config.seeds:
        raise ValueError('`seeds` must list at least one seed.')
    if config.student.mixup_alpha > 0:
        raise ValueError('The student recipe must have `mixup_alpha=0` (KD on un-mixed images).')
    t_start = time.time()
    data = load_digit_splits(config.n_cal, config.n_test, config.split_seed)
    x_train, y_train = data['x_train'], data['y_train']
    x_aug, y_aug = shift_augment(x_train, y_train)
    x_stu, y_stu = (x_aug, y_aug) if config.student.augment else (x_train, y_train)
    kd = KDLoss(tau=config.tau)
    runs: List[Dict[str, Any]] = []
    baseline: List[Dict[str, Any]] = []
    arrays: Dict[str, np.ndarray] = dict(y_cal=data['y_cal'].numpy(),
                                         y_test=data['y_test'].numpy())
    # one unit per (seed, teacher): its training, its two students; logged with elapsed and ETA
    progress = EtaProgress(len(config.seeds) * len(config.teachers), 'study', log=log,
                           interval=0.0)
    for seed in config.seeds:
        t0 = time.time()
        base = train_classifier(config.student, x_stu, y_stu, seed)
        baseline.append(dict(seed=seed, student_acc=accuracy(base, data['x_test'],
                                                             data['y_test'])))
        for recipe in config.teachers:
            n_use = max(N_CLASSES, round(recipe.train_fraction * x_train.shape[0]))
            xt, yt = x_train[:n_use], y_train[:n_use]
            if recipe.augment:
                xt, yt = shift_augment(xt, yt)
            t1 = time.time()
            teacher = train_classifier(recipe, xt, yt, seed)
            z_cal = predict_logits(teacher, data['x_cal'])
            z_test = predict_logits(teacher, data['x_test'])
            rec: Dict[str, Any] = dict(seed=seed, teacher=recipe.name)
            rec.update(teacher_metrics(z_cal, data['y_cal'], z_test, data['y_test'],
                                       config.n_bins))
            z_stu = predict_logits(teacher, x_stu)
            # what the student actually sees: the teacher on the KD (training) images
            rec['kd_acc'] = float((z_stu.argmax(1) == y_stu).double().mean())
            for suffix, temp in (('', 1.0), ('_scaled', rec['t_cal'])):
                rec['kd_conf' + suffix] = float(
                    torch.softmax(z_stu.double() / temp, 1).max(1).values.mean())
            for tag, temp in (('raw', 1.0), ('cal', rec['t_cal'])):
                student = train_classifier(config.student, x_stu, y_stu, seed,
                                           teacher_logits=z_stu / temp, kd_loss=kd,
                                           ce_weight=config.ce_weight,
                                           kd_weight=config.kd_weight)
                rec[f'student_acc_{tag}'] = accuracy(student, data['x_test'], data['y_test'])
            rec['teacher_train_s'] = round(time.time() - t1, 2)
            runs.append(rec)
            arrays[f's{seed}/{recipe.name}/cal'] = z_cal.numpy()
            arrays[f's{seed}/{recipe.name}/test'] = z_test.numpy()
            progress.update(note=(
                f'| seed {seed} {recipe.name:18s} acc {rec["acc"]:.4f} ACE {rec["ace"]:.4f} '
                f'ECE {rec["ece"]:.4f} T_cal {rec["t_cal"]:.3f} -> ACE {rec["ace_scaled"]:.4f}'
                f' | student raw {rec["student_acc_raw"]:.4f} cal {rec["student_acc_cal"]:.4f}'
                f' ({rec["teacher_train_s"]:.1f}s)'))
        log(f'seed {seed} done in {time.time() - t0:.1f}s (baseline student '
            f'{baseline[-1]["student_acc"]:.4f})')
    if out_dir is not None:
        os.makedirs(out_dir, exist_ok=True)
        np.savez_compressed(osp.join(out_dir, 'logits.npz'), **arrays)
    cfg = asdict(config)
    cfg['seeds'] = list(config.seeds)
    return dict(config=cfg, runs=runs, baseline=baseline, machine=describe_machine(),
                split_sizes=dict(train=int(x_train.shape[0]), cal=int(data['x_cal'].shape[0]),
                                 test=int(data['x_test'].shape[0]),
                                 train_augmented=int(x_aug.shape[0])),
                wall_time_s=round(time.time() - t_start, 1))


def _json_default(o: Any) -> Any:
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, tuple):
        return list(o)
    raise TypeError(f'not JSON serialisable: {type(o).__name__}')


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    """Command line: run the study and write ``results.json``, ``results.md``, the figure and
    ``logits.npz`` into ``--out``.

    Args:
        argv: Arguments (default: ``sys.argv[1:]``).

    Returns:
        dict: The summarized results (as written to ``results.json``).
    """
    import argparse

    parser = argparse.ArgumentParser(
        description='Teacher calibration vs. student accuracy in KD on sklearn digits '
        '(Kim et al., IEEE Access 2025).')
    parser.add_argument('--out', default='work_dirs/teacher_calibration_study',
                        help='output directory')
    parser.add_argument('--seeds', type=int, default=None,
                        help='number of seeds 0..N-1 (default 4, or 2 with --quick)')
    parser.add_argument('--quick', action='store_true',
                        help='4 small teachers, short schedules, smaller splits (tests)')
    parser.add_argument('--family', choices=FAMILIES, default='matched',
                        help="teacher family: 'matched' (all teachers train on the student's "
                        "augmented images) or 'mixed' (over-confident teachers without "
                        'augmentation)')
    parser.add_argument('--replot', action='store_true',
                        help='no training: re-summarize OUT/results.json and redraw the figure '
                        'and results.md from it')
    parser.add_argument('--threads', type=int, default=1,
                        help='torch CPU threads (default 1)')
    args = parser.parse_args(argv)
    n_seeds = args.seeds if args.seeds is not None else (2 if args.quick else 4)
    if n_seeds < 1:
        parser.error(f'--seeds must be >= 1, got {n_seeds}')
    if args.threads < 1:
        parser.error(f'--threads must be >= 1, got {args.threads}')
    torch.set_num_threads(args.threads)
    if args.replot:
        src = osp.join(args.out, 'results.json')
        if not osp.isfile(src):
            raise FileNotFoundError(f'--replot reads {src}, which does not exist: run the study '
                                    'into this --out first.')
        with open(src) as f:
            results = summarize(json.load(f))
        return _write_outputs(results, args.out)
    config = StudyConfig(seeds=tuple(range(n_seeds)),
                         n_cal=300 if args.quick else 400,
                         n_test=400 if args.quick else 600,
                         teachers=default_teacher_recipes(args.quick, args.family),
                         student=default_student_recipe(args.quick))
    results = summarize(run_study(config, out_dir=args.out))
    results['family'] = args.family
    results['command'] = ('python projects/teacher_studies/run_classification_study.py'
                          + (' --quick' if args.quick else '') + f' --seeds {n_seeds}'
                          + f' --family {args.family} --out {args.out}')
    return _write_outputs(results, args.out)


def _write_outputs(results: Dict[str, Any], out: str) -> Dict[str, Any]:
    """Write the figure, ``results.json`` and ``results.md`` into ``out``."""
    fig = plot_study(results, osp.join(out, 'teacher_calibration_study.png'))
    with open(osp.join(out, 'results.json'), 'w') as f:
        json.dump(results, f, indent=1, default=_json_default)
    write_markdown(results, osp.join(out, 'results.md'), osp.basename(fig))
    print(f"wrote {out}/results.json, results.md, {osp.basename(fig)} (study wall time "
          f"{results['wall_time_s']:.0f} s)")
    return results
