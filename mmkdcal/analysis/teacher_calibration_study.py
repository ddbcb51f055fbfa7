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
"""
import json
import math
import os
import os.path as osp
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from mmkdcal.calibration import ace, ece, ece_over_under, fit_temperature, nll
from mmkdcal.utils.progress import EtaProgress

__all__ = [
    'TrainRecipe', 'StudyConfig', 'load_digit_splits', 'shift_augment', 'build_mlp',
    'default_teacher_recipes', 'default_student_recipe', 'predict_logits',
    'train_classifier', 'teacher_metrics', 'summarize',
    'correlation_table', 'run_study', 'write_markdown', 'plot_study', 'reading', 'main'
]

N_CLASSES = 10


@dataclass
class TrainRecipe:
    """How one classifier (teacher or student) is built and trained.

    Args:
        name: Short identifier used in tables and file names.
        hidden: Widths of the hidden layers of the MLP (empty: a linear classifier).
        epochs: Passes over the (augmented) training set.
        lr: Peak Adam learning rate (cosine-annealed to 0 over ``epochs``).
        batch_size: Mini-batch size.
        weight_decay: Decoupled weight decay (AdamW).
        label_smoothing: Label-smoothing factor of the cross-entropy (Szegedy et al., 2016).
        mixup_alpha: Beta(alpha, alpha) parameter of mixup (Zhang et al., ICLR 2018); 0 = off.
        dropout: Dropout probability after every hidden layer.
        augment: Train on the 1-pixel-shift augmented training split (5x) instead of the
            plain one.
        train_fraction: Train on this leading fraction of the (shuffled, fixed) training split
            only (before augmentation); 1.0 = all of it.
        note: Plain-language description for the report.
    """
    name: str
    hidden: Tuple[int, ...] = (128, )
    epochs: int = 30
    lr: float = 1e-3
    batch_size: int = 128
    weight_decay: float = 0.0
    label_smoothing: float = 0.0
    mixup_alpha: float = 0.0
    dropout: float = 0.0
    augment: bool = True
    train_fraction: float = 1.0
    note: str = ''

    def __post_init__(self) -> None:
        self.hidden = tuple(int(h) for h in self.hidden)
        if not self.name or not self.name.replace('_', '').replace('-', '').isalnum():
            raise ValueError(f'TrainRecipe `name` must be a non-empty identifier of letters, '
                             f'digits, "_" or "-", got {self.name!r}.')
        if any(h < 1 for h in self.hidden):
            raise ValueError(f'TrainRecipe `hidden` widths must be >= 1, got {self.hidden}.')
        for key in ('epochs', 'batch_size'):
            if int(getattr(self, key)) < 1:
                raise ValueError(f'TrainRecipe `{key}` must be >= 1, got {getattr(self, key)}.')
        if not self.lr > 0:
            raise ValueError(f'TrainRecipe `lr` must be > 0, got {self.lr}.')
        if self.weight_decay < 0 or self.mixup_alpha < 0:
            raise ValueError('TrainRecipe `weight_decay` and `mixup_alpha` must be >= 0, got '
                             f'{self.weight_decay} and {self.mixup_alpha}.')
        if not (0 <= self.label_smoothing < 1 and 0 <= self.dropout < 1):
            raise ValueError('TrainRecipe `label_smoothing` and `dropout` must be in [0, 1), got '
                             f'{self.label_smoothing} and {self.dropout}.')
        if not 0 < self.train_fraction <= 1:
            raise ValueError('TrainRecipe `train_fraction` must be in (0, 1], got '
                             f'{self.train_fraction}.')


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


def load_digit_splits(n_cal: int = 400, n_test: int = 600,
                      split_seed: int = 0) -> Dict[str, torch.Tensor]:
    """Load scikit-learn's digits and split them, stratified, into train / cal / test.

    Pixels (0..16) are scaled to [0, 1]. The split is a seeded stratified permutation
    (``sklearn.model_selection.train_test_split`` twice), the same for every seed of the study.

    Args:
        n_cal: Number of calibration images (held out, only used to fit ``T_cal``).
        n_test: Number of test images.
        split_seed: Seed of the split.

    Returns:
        dict: ``x_train, y_train, x_cal, y_cal, x_test, y_test``; images as float32 (N, 8, 8),
        labels as int64 (N,).
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    n = len(data.target)
    for key, val in (('n_cal', n_cal), ('n_test', n_test)):
        if not isinstance(val, int) or val < 10 * N_CLASSES:
            raise ValueError(f'`{key}` must be an int >= {10 * N_CLASSES} (10 images per class), '
                             f'got {val!r}.')
    if n_cal + n_test > n - 10 * N_CLASSES:
        raise ValueError(f'`n_cal` + `n_test` = {n_cal + n_test} leaves fewer than '
                         f'{10 * N_CLASSES} of the {n} digits for training: lower them.')
    x = data.images.astype(np.float32) / 16.0
    y = data.target.astype(np.int64)
    x_rest, x_test, y_rest, y_test = train_test_split(
        x, y, test_size=n_test, stratify=y, random_state=split_seed)
    x_train, x_cal, y_train, y_cal = train_test_split(
        x_rest, y_rest, test_size=n_cal, stratify=y_rest, random_state=split_seed + 1)
    out = dict(x_train=x_train, y_train=y_train, x_cal=x_cal, y_cal=y_cal, x_test=x_test,
               y_test=y_test)
    return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in out.items()}


def shift_augment(x: torch.Tensor, y: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Add the four 1-pixel shifts (up, down, left, right; zero fill) of every image.

    Args:
        x: Images (N, H, W).
        y: Labels (N,).

    Returns:
        tuple: ``(x_aug, y_aug)`` of 5N images: the originals first, then each shift.
    """
    if x.dim() != 3 or y.shape != x.shape[:1]:
        raise ValueError(f'shift_augment expects `x` (N, H, W) and `y` (N,), got shapes '
                         f'{tuple(x.shape)} and {tuple(y.shape)}.')
    shifted = [x]
    for dim, step in ((1, -1), (1, 1), (2, -1), (2, 1)):
        s = torch.roll(x, step, dims=dim)
        index = 0 if step == 1 else x.shape[dim] - 1  # the row/column that wrapped around
        s.select(dim, index).zero_()
        shifted.append(s)
    return torch.cat(shifted), y.repeat(5)


def build_mlp(hidden: Sequence[int], dropout: float = 0.0, in_features: int = 64,
              n_classes: int = N_CLASSES) -> nn.Sequential:
    """An MLP on flattened images: ``[Linear -> ReLU (-> Dropout)] * len(hidden) -> Linear``.

    Args:
        hidden: Hidden widths (empty: a linear classifier).
        dropout: Dropout probability after every hidden ReLU.
        in_features: Input size (64 for 8x8 images).
        n_classes: Number of logits.

    Returns:
        nn.Sequential: The model; it flattens its (N, H, W) input itself.
    """
    layers: List[nn.Module] = [nn.Flatten()]
    width = in_features
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width = h
    layers.append(nn.Linear(width, n_classes))
    return nn.Sequential(*layers)


#: Teacher families of :func:`default_teacher_recipes`.
FAMILIES = ('matched', 'mixed')


def default_teacher_recipes(quick: bool = False, family: str = 'matched') -> List[TrainRecipe]:
    """The teacher family: sizes, data, schedules and regularisers that move calibration both ways.

    Long training without regularisation, a high learning rate or a small training subset
    drives the training loss to ~0 and the logits up (over-confidence, Guo et al., ICML 2017);
    short schedules, label smoothing, mixup, dropout and strong weight decay pull confidences
    down (under-confidence on easy data; Mueller et al., NeurIPS 2019; Thulasidasan et al.,
    NeurIPS 2019).

    Two families:

    * ``'matched'`` (default): every teacher trains on the shift-augmented images, the same
      distribution as the student's KD images (the subset teachers on a subset of them), as in
      the usual KD set-up where teacher and student share the training pipeline.
    * ``'mixed'``: the over-confident teachers are made by dropping the augmentation, so KD
      queries them on shifted images they never saw (their accuracy there is ~50-57%); kept to
      reproduce that contrast (see docs/teacher_calibration_study.md).

    Args:
        quick: A 4-teacher, few-epoch family for tests.
        family: ``'matched'`` or ``'mixed'``.

    Returns:
        list[TrainRecipe]: The recipes, in table order.
    """
    if family not in FAMILIES:
        raise ValueError(f'`family` must be one of {FAMILIES}, got {family!r}.')
    if quick:
        return [
            TrainRecipe('mlp64_e4', (64, ), epochs=4, lr=3e-3, note='small, short'),
            TrainRecipe('long256_e60', (256, ), epochs=60, lr=3e-3,
                        augment=family == 'matched',
                        note='long, no regularisation'),
            TrainRecipe('mlp128_ls30', (128, ), epochs=5, lr=3e-3, label_smoothing=0.3,
                        note='label smoothing 0.3'),
            TrainRecipe('sub25_256_e60', (256, ), epochs=60, lr=3e-3, train_fraction=0.25,
                        augment=family == 'matched',
                        note='25% of the data, long, no regularisation'),
        ]
    under = [
        TrainRecipe('mlp256x2_drop30', (256, 256), epochs=40, dropout=0.3, note='dropout 0.3'),
        TrainRecipe('mlp256x2_wd05', (256, 256), epochs=40, weight_decay=0.5,
                    note='weight decay 0.5 (AdamW)'),
        TrainRecipe('mlp256x2_ls10', (256, 256), epochs=40, label_smoothing=0.1,
                    note='label smoothing 0.1'),
        TrainRecipe('mlp256x2_ls30', (256, 256), epochs=40, label_smoothing=0.3,
                    note='label smoothing 0.3'),
        TrainRecipe('mlp256x2_mix02', (256, 256), epochs=40, mixup_alpha=0.2, note='mixup 0.2'),
        TrainRecipe('mlp256x2_mix10', (256, 256), epochs=40, mixup_alpha=1.0, note='mixup 1.0'),
    ]
    base = [
        TrainRecipe('mlp128_e30', (128, ), epochs=30, note='medium, short schedule'),
        TrainRecipe('mlp512x2_e40', (512, 512), epochs=40, lr=2e-3,
                    note='large, standard schedule'),
    ]
    if family == 'matched':
        over = [
            TrainRecipe('mlp512x2_e100', (512, 512), epochs=100, lr=5e-3,
                        note='large, long, high lr, no regularisation'),
            TrainRecipe('sub50_256x2_e150', (256, 256), epochs=150, lr=2e-3, train_fraction=0.5,
                        note='50% of the data, long, no regularisation'),
            TrainRecipe('sub25_512x2_e200', (512, 512), epochs=200, lr=2e-3, train_fraction=0.25,
                        note='25% of the data, very long, no regularisation'),
            TrainRecipe('sub25_256_e300', (256, ), epochs=300, lr=3e-3, train_fraction=0.25,
                        note='25% of the data, very long, high lr, no regularisation'),
        ]
    else:
        over = [
            TrainRecipe('noaug1024_e300', (1024, ), epochs=300, lr=3e-3, augment=False,
                        note='wide, no augmentation, very long, no regularisation'),
            TrainRecipe('noaug512x2_e300', (512, 512), epochs=300, lr=2e-3, augment=False,
                        note='large, no augmentation, very long, no regularisation'),
            TrainRecipe('sub50_256x2_e400', (256, 256), epochs=400, lr=2e-3, augment=False,
                        train_fraction=0.5, note='50% of the data, no augmentation, very long'),
            TrainRecipe('sub25_512x2_e600', (512, 512), epochs=600, lr=2e-3, augment=False,
                        train_fraction=0.25, note='25% of the data, no augmentation, very long'),
        ]
    return base + over + under


def default_student_recipe(quick: bool = False) -> TrainRecipe:
    """The student: a one-hidden-layer MLP of width 32, far smaller than every teacher.

    Args:
        quick: Fewer epochs for tests.

    Returns:
        TrainRecipe: The student recipe (augmented data, no regularisation).
    """
    return TrainRecipe('student_mlp32', (32, ), epochs=8 if quick else 40, lr=3e-3,
                       note='student: MLP 64-32-10')


def train_classifier(recipe: TrainRecipe,
                     x: torch.Tensor,
                     y: torch.Tensor,
                     seed: int,
                     teacher_logits: Optional[torch.Tensor] = None,
                     kd_loss: Optional[nn.Module] = None,
                     ce_weight: float = 1.0,
                     kd_weight: float = 0.0) -> nn.Module:
    """Train an MLP with Adam(W), cosine learning rate, and optionally a KD term.

    Loss per mini-batch: ``ce_weight * CE_ls(s, y) + kd_weight * kd_loss(s, t)`` where ``CE_ls``
    is the (label-smoothed) cross-entropy, mixed between the two labels with mixup, and ``t``
    the rows of ``teacher_logits`` (computed on the same, un-mixed images). Initialisation,
    shuffling and mixup draws all follow ``seed``, so two runs that differ only in
    ``teacher_logits`` see the same batches.

    Args:
        recipe: Architecture and schedule.
        x: Training images (N, 8, 8).
        y: Training labels (N,).
        seed: Seed of initialisation, shuffling, dropout and mixup.
        teacher_logits: Teacher logits on ``x`` (N, K), or None for plain training.
        kd_loss: Distillation loss ``(student_logits, teacher_logits) -> scalar``; required
            with ``teacher_logits``.
        ce_weight: Weight of the cross-entropy.
        kd_weight: Weight of the KD loss.

    Returns:
        nn.Module: The trained model in eval mode.
    """
    if (teacher_logits is None) != (kd_loss is None):
        raise ValueError('`teacher_logits` and `kd_loss` go together: pass both for KD or '
                         'neither for plain training.')
    if teacher_logits is not None and recipe.mixup_alpha > 0:
        raise ValueError('mixup (`mixup_alpha` > 0) is not supported for a distilled student: '
                         'set the student recipe `mixup_alpha=0`.')
    if teacher_logits is not None and teacher_logits.shape != (x.shape[0], N_CLASSES):
        raise ValueError(f'`teacher_logits` must have shape ({x.shape[0]}, {N_CLASSES}), got '
                         f'{tuple(teacher_logits.shape)}.')
    torch.manual_seed(seed)
    model = build_mlp(recipe.hidden, recipe.dropout)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    n = x.shape[0]
    steps_per_epoch = math.ceil(n / recipe.batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, recipe.epochs * steps_per_epoch)
    rng = np.random.default_rng(seed)  # mixup coefficients
    model.train()
    for _ in range(recipe.epochs):
        order = torch.randperm(n, generator=gen)
        for start in range(0, n, recipe.batch_size):
            idx = order[start:start + recipe.batch_size]
            xb, yb = x[idx], y[idx]
            if recipe.mixup_alpha > 0:
                lam = float(rng.beta(recipe.mixup_alpha, recipe.mixup_alpha))
                perm = torch.randperm(xb.shape[0], generator=gen)
                out = model(lam * xb + (1 - lam) * xb[perm])
                loss = ce_weight * (
                    lam * F.cross_entropy(out, yb, label_smoothing=recipe.label_smoothing) +
                    (1 - lam) * F.cross_entropy(out, yb[perm],
                                                label_smoothing=recipe.label_smoothing))
            else:
                out = model(xb)
                loss = ce_weight * F.cross_entropy(out, yb,
                                                   label_smoothing=recipe.label_smoothing)
                if teacher_logits is not None:
                    loss = loss + kd_weight * kd_loss(out, teacher_logits[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    return model.eval()


@torch.no_grad()
def predict_logits(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Logits of ``model`` on ``x`` in eval mode, without gradient.

    Args:
        model: A classifier.
        x: Inputs (N, 8, 8).

    Returns:
        torch.Tensor: Logits (N, K).
    """
    return model.eval()(x)


def teacher_metrics(logits_cal: torch.Tensor, y_cal: torch.Tensor, logits_test: torch.Tensor,
                    y_test: torch.Tensor, n_bins: int = 15) -> Dict[str, float]:
    """Calibration of one teacher before and after temperature scaling.

    ``T_cal`` minimises the NLL of ``softmax(logits_cal / T)`` on the calibration split
    (:func:`mmkdcal.calibration.fit_temperature`, Guo et al. 2017); every test metric is then
    computed on ``softmax(logits_test)`` (suffix-free keys) and on ``softmax(logits_test / T_cal)``
    (keys ending in ``_scaled``).

    Args:
        logits_cal: Teacher logits on the calibration split (N_cal, K).
        y_cal: Calibration labels (N_cal,).
        logits_test: Teacher logits on the test split (N_test, K).
        y_test: Test labels (N_test,).
        n_bins: Bins of ECE / ACE.

    Returns:
        dict: ``acc, ece, ace, ece_o, ece_u, nll`` and the same with ``_scaled``; ``t_cal``;
        ``nll_cal`` / ``nll_cal_scaled`` (the fitting objective before/after) and ``mean_conf``
        / ``mean_conf_scaled`` (mean top-label confidence on test).
    """
    t_cal = float(fit_temperature(logits_cal, y_cal, objective='nll', n_bins=n_bins))
    out: Dict[str, float] = dict(t_cal=t_cal)
    out['acc'] = float((logits_test.argmax(1) == y_test).double().mean())
    for suffix, temp in (('', 1.0), ('_scaled', t_cal)):
        p = torch.softmax(logits_test.double() / temp, dim=1)
        out['ece' + suffix] = ece(p, y_test, n_bins)
        out['ace' + suffix] = ace(p, y_test, n_bins)
        e_o, e_u = ece_over_under(p, y_test, n_bins)
        out['ece_o' + suffix], out['ece_u' + suffix] = e_o, e_u
        out['nll' + suffix] = nll(p, y_test)
        out['mean_conf' + suffix] = float(p.max(1).values.mean())
        out['nll_cal' + suffix] = nll(torch.softmax(logits_cal.double() / temp, dim=1), y_cal)
    return out


def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    return float((predict_logits(model, x).argmax(1) == y).double().mean())


def _machine() -> str:
    import platform
    model = platform.processor()
    try:
        with open('/proc/cpuinfo') as f:
            model = next((ln.split(':', 1)[1].strip() for ln in f
                          if ln.startswith('model name')), model)
    except OSError:
        pass
    return (f'{os.cpu_count()}-core {platform.machine()} CPU ({model or "unknown model"}), '
            f'torch {torch.__version__}, {torch.get_num_threads()} torch thread(s)')


def run_study(config: StudyConfig, out_dir: Optional[str] = None,
              log: Any = print) -> Dict[str, Any]:
    """Train the teachers and students of every seed and gather the raw numbers.

    For each seed ``s`` and teacher recipe: train the teacher (seed ``s``), measure it with
    :func:`teacher_metrics`, then distil the student (seed ``s``) from its raw logits and from
    its logits divided by ``T_cal``, with identical initialisation and batches. A student
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
        baseline.append(dict(seed=seed, student_acc=_accuracy(base, data['x_test'],
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
                rec[f'student_acc_{tag}'] = _accuracy(student, data['x_test'], data['y_test'])
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
    return dict(config=cfg, runs=runs, baseline=baseline, machine=_machine(),
                split_sizes=dict(train=int(x_train.shape[0]), cal=int(data['x_cal'].shape[0]),
                                 test=int(data['x_test'].shape[0]),
                                 train_augmented=int(x_aug.shape[0])),
                wall_time_s=round(time.time() - t_start, 1))


#: Teacher metrics correlated with student accuracy: JSON key -> label.
CORR_METRICS = dict(ace='teacher ACE', ece='teacher ECE', ece_o='teacher ECE_o',
                    ece_u='teacher ECE_u', nll='teacher NLL', acc='teacher accuracy',
                    kd_conf='teacher confidence on the KD images')
#: Per-run fields averaged over seeds in the per-teacher table.
MEAN_FIELDS = ('acc', 'ece', 'ace', 'ece_o', 'ece_u', 'nll', 'mean_conf', 't_cal', 'ece_scaled',
               'ace_scaled', 'ece_o_scaled', 'ece_u_scaled', 'nll_scaled', 'mean_conf_scaled',
               'nll_cal', 'nll_cal_scaled', 'kd_acc', 'kd_conf', 'kd_conf_scaled',
               'student_acc_raw', 'student_acc_cal', 'gain')


def _pearson_spearman(x: Sequence[float], y: Sequence[float]) -> Dict[str, Optional[float]]:
    """Pearson and Spearman correlation with their two-sided p-values (scipy.stats).

    Returns ``None`` entries when a correlation is undefined (fewer than 3 points or a constant
    input), instead of NaN.
    """
    from scipy import stats

    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    out: Dict[str, Optional[float]] = dict(n=int(x.size), pearson_r=None, pearson_p=None,
                                           spearman_rho=None, spearman_p=None)
    if x.size < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return out
    pr = stats.pearsonr(x, y)
    sr = stats.spearmanr(x, y)
    for key, val in (('pearson_r', pr.statistic), ('pearson_p', pr.pvalue),
                     ('spearman_rho', sr.statistic), ('spearman_p', sr.pvalue)):
        out[key] = float(val) if np.isfinite(val) else None
    return out


def correlation_table(rows: Sequence[Dict[str, Any]],
                      with_calibrated: bool = False) -> Dict[str, Dict[str, Optional[float]]]:
    """Correlation of each teacher metric with the accuracy of the student it taught.

    Args:
        rows: Records with the teacher metrics (``ace``, ``ece``, ... and their ``_scaled``
            versions) and ``student_acc_raw`` / ``student_acc_cal``.
        with_calibrated: Also add one point per row for the calibrated teacher (its
            ``*_scaled`` metrics against ``student_acc_cal``; its accuracy is unchanged), as in
            the pooled raw + calibrated scatter.

    Returns:
        dict: metric key -> :func:`_pearson_spearman` result.
    """
    out = {}
    for key in CORR_METRICS:
        x = [r[key] for r in rows]
        y = [r['student_acc_raw'] for r in rows]
        if with_calibrated:
            x += [r[key if key == 'acc' else key + '_scaled'] for r in rows]
            y += [r['student_acc_cal'] for r in rows]
        out[key] = _pearson_spearman(x, y)
    return out


def _mean_ci(values: Sequence[float]) -> Dict[str, Optional[float]]:
    """Mean, sample std and the t-based 95% confidence interval of the mean."""
    from scipy import stats

    v = np.asarray(values, dtype=np.float64)
    out: Dict[str, Optional[float]] = dict(n=int(v.size), mean=float(v.mean()) if v.size else None,
                                           std=None, ci95_low=None, ci95_high=None)
    if v.size >= 2:
        sd = float(v.std(ddof=1))
        half = float(stats.t.ppf(0.975, v.size - 1) * sd / math.sqrt(v.size))
        out.update(std=sd, ci95_low=out['mean'] - half, ci95_high=out['mean'] + half)
    return out


def summarize(results: Dict[str, Any]) -> Dict[str, Any]:
    """Add per-teacher means, correlations and calibration gains to the raw results.

    * ``per_teacher``: every :data:`MEAN_FIELDS` averaged over seeds (``gain`` =
      ``student_acc_cal - student_acc_raw``), with ``*_std`` over seeds, and ``direction``:
      ``'over'`` if the mean ``T_cal > 1`` else ``'under'``.
    * ``correlations``: ``per_teacher_raw`` (:func:`correlation_table` of the per-teacher
      means, one point per teacher), ``per_teacher_pooled`` (plus the calibrated teachers),
      ``per_seed`` (the raw table within each seed) and ``per_seed_summary`` (mean and std over
      seeds of each per-seed coefficient) and ``teacher_ace_vs_acc`` (teacher ACE vs
      teacher accuracy across teachers: how confounded the two predictors are) and
      ``gain_vs_log_t_cal`` (over all (seed, teacher) pairs: ``log T_cal`` vs the gain).
    * ``gain``: ``all`` / ``over`` / ``under``: :func:`_mean_ci` over seeds of the mean gain of
      the (seed, teacher) pairs of that group, with the teacher's direction taken from its own
      ``T_cal`` in that seed (seeds without such a teacher are skipped), plus ``pairs`` (count)
      and ``frac_positive`` / ``frac_negative`` over the pairs.
    * ``baseline``: :func:`_mean_ci` of the no-KD student accuracy over seeds.

    Args:
        results: Output of :func:`run_study`.

    Returns:
        dict: ``results`` with the keys above added (modified in place and returned).
    """
    runs = results['runs']
    for r in runs:
        r['gain'] = r['student_acc_cal'] - r['student_acc_raw']
        r['direction'] = 'over' if r['t_cal'] > 1 else 'under'
    teachers = list(dict.fromkeys(r['teacher'] for r in runs))
    seeds = list(dict.fromkeys(r['seed'] for r in runs))
    per_teacher = []
    for name in teachers:
        rs = [r for r in runs if r['teacher'] == name]
        row: Dict[str, Any] = dict(teacher=name, n_seeds=len(rs))
        for key in MEAN_FIELDS:
            vals = np.array([r[key] for r in rs], dtype=np.float64)
            row[key] = float(vals.mean())
            row[key + '_std'] = float(vals.std(ddof=1)) if vals.size > 1 else 0.0
        row['direction'] = 'over' if row['t_cal'] > 1 else 'under'
        per_teacher.append(row)
    per_seed = {str(s): correlation_table([r for r in runs if r['seed'] == s]) for s in seeds}
    seed_summary: Dict[str, Dict[str, Any]] = {}
    for key in CORR_METRICS:
        seed_summary[key] = {}
        for stat in ('pearson_r', 'spearman_rho'):
            vals = [per_seed[str(s)][key][stat] for s in seeds]
            vals = [v for v in vals if v is not None]
            seed_summary[key][stat] = _mean_ci(vals)
    gain: Dict[str, Any] = {}
    for group in ('all', 'over', 'under'):
        pairs = [r for r in runs if group == 'all' or r['direction'] == group]
        per_seed_gain = []
        for s in seeds:
            g = [r['gain'] for r in pairs if r['seed'] == s]
            if g:
                per_seed_gain.append(float(np.mean(g)))
        gains = np.array([r['gain'] for r in pairs], dtype=np.float64)
        gain[group] = dict(over_seeds=_mean_ci(per_seed_gain), per_seed=per_seed_gain,
                           pairs=int(gains.size),
                           pair_mean=float(gains.mean()) if gains.size else None,
                           frac_positive=float((gains > 0).mean()) if gains.size else None,
                           frac_negative=float((gains < 0).mean()) if gains.size else None)
    results['per_teacher'] = per_teacher
    results['correlations'] = dict(per_teacher_raw=correlation_table(per_teacher),
                                   per_teacher_pooled=correlation_table(per_teacher, True),
                                   per_seed=per_seed, per_seed_summary=seed_summary)
    results['correlations']['teacher_ace_vs_acc'] = _pearson_spearman(
        [r['ace'] for r in per_teacher], [r['acc'] for r in per_teacher])
    results['correlations']['gain_vs_log_t_cal'] = _pearson_spearman(
        [math.log(r['t_cal']) for r in runs], [r['gain'] for r in runs])
    results['gain'] = gain
    results['baseline_summary'] = _mean_ci([b['student_acc'] for b in results['baseline']])
    results['kd_vs_baseline'] = _mean_ci([
        float(np.mean([r['student_acc_raw'] for r in runs if r['seed'] == b['seed']])) -
        b['student_acc'] for b in results['baseline']])
    return results


_COLOURS = dict(over='#d62728', under='#1f77b4')


def _fmt_r(c: Dict[str, Optional[float]]) -> str:
    if c['pearson_r'] is None:
        return 'r = n/a'
    return (f"Pearson r = {c['pearson_r']:+.2f} (p = {c['pearson_p']:.2g}), "
            f"Spearman rho = {c['spearman_rho']:+.2f} (p = {c['spearman_p']:.2g})")


def _fmt_r_short(c: Dict[str, Optional[float]]) -> str:
    if c['pearson_r'] is None:
        return 'r = n/a'
    return (f"r = {c['pearson_r']:+.2f} (p = {c['pearson_p']:.1g}), "
            f"rho = {c['spearman_rho']:+.2f} (p = {c['spearman_p']:.1g})")


def plot_study(results: Dict[str, Any], path: str) -> str:
    """Draw the 2x2 study figure: teacher ACE / accuracy / ECE_o vs. the student, and the gain.

    Panel (a), like Figure 1 of Kim et al. 2025: teacher ACE (log scale) vs. student test
    accuracy, one filled marker per raw teacher and a hollow one for the same teacher after
    temperature scaling (joined by an arrow), coloured by the direction of miscalibration
    (red: over-confident, ``T_cal > 1``; blue: under-confident), means over seeds with their
    std as error bars; the dashed line and band are the no-KD student. Panel (b): teacher
    accuracy, (c): teacher over-confidence ECE_o, each vs. student accuracy. Panel (d): the
    gain of calibrating (student accuracy with the calibrated minus the raw teacher) against
    ``T_cal``. Correlations in the titles are those of ``results['correlations']`` (raw
    teachers, one point per teacher; (d): all (seed, teacher) pairs).

    Args:
        results: Output of :func:`summarize`.
        path: PNG file to write.

    Returns:
        str: ``path``.
    """
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    def log_axis(axis: Any) -> None:
        axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 3.0, 5.0)))
        axis.set_major_formatter(FuncFormatter(lambda v, _: f'{v:g}'))
        axis.set_minor_formatter(NullFormatter())

    rows = results['per_teacher']
    corr = results['correlations']
    base = results['baseline_summary']
    fig = Figure(figsize=(14, 11), dpi=110)
    axes = fig.subplots(2, 2).ravel()
    fig.subplots_adjust(left=0.065, right=0.985, top=0.9, bottom=0.06, wspace=0.2, hspace=0.3)

    def student_panel(ax: Any, key: str, scale: float, arrows: bool) -> None:
        """Raw (filled) and calibrated (hollow) teachers of metric ``key`` vs. the student."""
        ax.axhline(100 * base['mean'], color='0.35', ls='--', lw=1, zorder=1)
        if base['std'] is not None:
            ax.axhspan(100 * (base['mean'] - base['std']), 100 * (base['mean'] + base['std']),
                       color='0.88', zorder=0)
        cal_key = key if key == 'acc' else key + '_scaled'
        for i, r in enumerate(rows, 1):
            c = _COLOURS[r['direction']]
            x0, y0 = scale * r[key], 100 * r['student_acc_raw']
            x1, y1 = scale * r[cal_key], 100 * r['student_acc_cal']
            if arrows:
                ax.annotate('', xy=(x1, y1), xytext=(x0, y0),
                            arrowprops=dict(arrowstyle='-|>', color=c, alpha=0.45, lw=1,
                                            mutation_scale=11, shrinkA=5, shrinkB=5))
            ax.errorbar(x0, y0, xerr=scale * r[key + '_std'],
                        yerr=100 * r['student_acc_raw_std'], fmt='o', color=c, ms=8, capsize=2,
                        elinewidth=0.8, zorder=3)
            ax.errorbar(x1, y1, xerr=scale * r[cal_key + '_std'],
                        yerr=100 * r['student_acc_cal_std'], fmt='s', mfc='white', mec=c,
                        ecolor=c, ms=7, capsize=2, elinewidth=0.8, zorder=3)
            ax.annotate(str(i), (x0, y0), xytext=(5, 4), textcoords='offset points',
                        fontsize=8, color=c)
        ax.set_ylabel('student test accuracy (%)')

    ax = axes[0]
    student_panel(ax, 'ace', 1.0, arrows=True)
    ax.set_xscale('log')
    log_axis(ax.xaxis)
    ax.set_xlabel('teacher ACE on test (log scale)')
    ax.set_title('(a) teacher ACE vs student accuracy\nraw teachers: '
                 + _fmt_r_short(corr['per_teacher_raw']['ace']), fontsize=10)
    handles = [
        Line2D([], [], marker='o', ls='', color=_COLOURS['over'],
               label='over-confident teacher (T_cal > 1), raw'),
        Line2D([], [], marker='o', ls='', color=_COLOURS['under'],
               label='under-confident teacher (T_cal < 1), raw'),
        Line2D([], [], marker='s', ls='', mfc='white', mec='0.3',
               label='same teacher / T_cal (calibrated)'),
        Line2D([], [], ls='--', color='0.35', label='student without KD (mean +- std)'),
    ]
    ax.legend(handles=handles, fontsize=8, loc='best', framealpha=0.85)
    ax = axes[1]
    student_panel(ax, 'acc', 100.0, arrows=False)
    ax.set_xlabel('teacher test accuracy (%) (unchanged by T_cal)')
    ax.set_title('(b) teacher accuracy vs student accuracy\nraw teachers: '
                 + _fmt_r_short(corr['per_teacher_raw']['acc']), fontsize=10)
    ax = axes[2]
    student_panel(ax, 'ece_o', 1.0, arrows=True)
    ax.set_xlabel('teacher over-confidence ECE_o on test')
    ax.set_title('(c) teacher ECE_o vs student accuracy\nraw teachers: '
                 + _fmt_r_short(corr['per_teacher_raw']['ece_o']), fontsize=10)
    ax = axes[3]
    ax.axhline(0, color='0.35', lw=1)
    ax.axvline(1, color='0.6', lw=0.8, ls=':')
    for i, r in enumerate(rows, 1):
        c = _COLOURS[r['direction']]
        ax.errorbar(r['t_cal'], 100 * r['gain'], xerr=r['t_cal_std'], yerr=100 * r['gain_std'],
                    fmt='D', color=c, ms=6, capsize=2, elinewidth=0.8)
        ax.annotate(str(i), (r['t_cal'], 100 * r['gain']), xytext=(5, 4),
                    textcoords='offset points', fontsize=8, color=c)
    ax.set_xscale('log')
    log_axis(ax.xaxis)
    ax.set_xlabel('calibration temperature T_cal (log scale)')
    ax.set_ylabel('student accuracy: calibrated - raw teacher (points)')
    g = results['gain']['all']['over_seeds']
    ax.set_title(f"(d) gain of calibrating the teacher (mean {100 * g['mean']:+.2f} points)\n"
                 f"gain vs log T_cal ({corr['gain_vs_log_t_cal']['n']} pairs): "
                 + _fmt_r_short(corr['gain_vs_log_t_cal']), fontsize=10)
    cfg = results['config']
    fig.suptitle(
        f"Teacher calibration and KD on sklearn digits: {len(rows)} teachers "
        f"(family {results.get('family', 'custom')}), student MLP "
        f"64-{'-'.join(map(str, cfg['student']['hidden']))}-10, KD tau = {cfg['tau']}, "
        f"w_ce = {cfg['ce_weight']}, w_kd = {cfg['kd_weight']}, {len(cfg['seeds'])} seed(s)\n"
        'markers: mean over seeds, bars: std over seeds; numbers: rows of the tables in '
        'results.md', fontsize=11)
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    fig.savefig(path)
    return path


def _strength(r: Optional[float], p: Optional[float]) -> str:
    if r is None:
        return 'undefined'
    size = 'strong' if abs(r) >= 0.6 else 'moderate' if abs(r) >= 0.3 else 'weak'
    sign = 'negative' if r < 0 else 'positive'
    sig = 'significant at 5%' if p is not None and p < 0.05 else 'not significant at 5%'
    return f'{size} {sign}, {sig}'


def _pct(v: Optional[float], signed: bool = False) -> str:
    if v is None:
        return 'n/a'
    return f'{100 * v:+.2f}' if signed else f'{100 * v:.2f}'


def _ci_text(s: Dict[str, Optional[float]]) -> str:
    if s['mean'] is None:
        return 'no data'
    if s['std'] is None:
        return f"{_pct(s['mean'], True)} points (1 seed: no spread)"
    return (f"{_pct(s['mean'], True)} points (std {_pct(s['std'])}, 95% CI "
            f"[{_pct(s['ci95_low'], True)}, {_pct(s['ci95_high'], True)}], {s['n']} seeds)")


def reading(results: Dict[str, Any]) -> List[str]:
    """Plain-language statements derived mechanically from the summarized numbers.

    Args:
        results: Output of :func:`summarize`.

    Returns:
        list[str]: One statement per finding (correlations, teacher accuracy, gains).
    """
    corr = results['correlations']['per_teacher_raw']
    out = []
    c = corr['ace']
    r_c, p_c = c['pearson_r'], c['pearson_p']
    if r_c is None:
        verdict = 'it is undefined here.'
    elif r_c <= -0.6 and p_c < 0.05:
        verdict = 'this data shows one (same sign).'
    elif r_c > 0 and p_c < 0.05:
        verdict = ('this data shows the opposite sign: teachers with a larger ACE taught better '
                   'students.')
    else:
        verdict = 'this data does not show a strong, significant negative one.'
    out.append(f"Teacher ACE vs student accuracy (raw teachers, one point per teacher): "
               f"{_fmt_r(c)}: {_strength(c['pearson_r'], c['pearson_p'])} (Pearson); "
               f"{_strength(c['spearman_rho'], c['spearman_p'])} (Spearman). The paper reports a "
               f'strong negative correlation; {verdict}')
    a = corr['acc']
    ra = a['pearson_r']
    if ra is not None and r_c is not None:
        better = 'teacher ACE' if abs(r_c) > abs(ra) else 'teacher accuracy'
        out.append(f"Teacher accuracy vs student accuracy: {_fmt_r(a)}. |r| is larger for "
                   f"{better} ({abs(r_c):.2f} for ACE, sign {r_c:+.2f}, vs {abs(ra):.2f} for "
                   'accuracy).')
    conf = results['correlations']['teacher_ace_vs_acc']
    if conf['pearson_r'] is not None:
        if abs(conf['pearson_r']) >= 0.3 or abs(conf['spearman_rho']) >= 0.3:
            out.append(f"Across teachers, ACE and accuracy are themselves correlated "
                       f"({_fmt_r(conf)}), so the two correlations above are not independent "
                       'evidence.')
        else:
            out.append(f"Across teachers, ACE and accuracy are nearly unrelated ({_fmt_r(conf)}),"
                       ' so the family separates the two predictors.')
    o = corr['ece_o']
    out.append(f"Teacher over-confidence ECE_o vs student accuracy: {_fmt_r(o)}: "
               f"{_strength(o['pearson_r'], o['pearson_p'])}. The paper's reading (over-"
               'confidence weakens the KD signal) predicts a negative sign here.')
    for key in ('ece', 'ece_u', 'nll', 'kd_conf'):
        out.append(f"{CORR_METRICS[key]} vs student accuracy: {_fmt_r(corr[key])}.")
    pooled = results['correlations']['per_teacher_pooled']['ace']
    out.append(f"Pooling raw and calibrated teachers ({pooled['n']} points): {_fmt_r(pooled)}.")
    for group, label in (('all', 'all teachers'), ('over', 'over-confident teachers (T_cal > 1)'),
                         ('under', 'under-confident teachers (T_cal < 1)')):
        g = results['gain'][group]
        s = g['over_seeds']
        if s['mean'] is None:
            out.append(f'Gain of calibrating, {label}: no such teacher in any seed.')
            continue
        if s['ci95_low'] is None:
            verdict = 'too few seeds for an interval'
        elif s['std'] == 0:
            verdict = 'the same value in every seed, so the interval is degenerate (no evidence)'
        elif s['ci95_low'] > 0:
            verdict = 'calibrating the teacher helped (the 95% CI excludes 0)'
        elif s['ci95_high'] < 0:
            verdict = 'calibrating the teacher hurt (the 95% CI excludes 0)'
        else:
            verdict = 'no effect distinguishable from seed noise (the 95% CI contains 0)'
        out.append(f"Gain of calibrating, {label}: {_ci_text(s)} over {g['pairs']} (seed, "
                   f"teacher) pairs, {100 * g['frac_positive']:.0f}% of them positive and "
                   f"{100 * g['frac_negative']:.0f}% negative: {verdict}.")
    gt = results['correlations']['gain_vs_log_t_cal']
    out.append(f"Gain of calibrating vs log T_cal over the {gt['n']} (seed, teacher) pairs: "
               f"{_fmt_r(gt)}: {_strength(gt['pearson_r'], gt['pearson_p'])}; a positive value "
               'means calibrating helps more the more over-confident (larger T_cal) the teacher.')
    kd = results['kd_vs_baseline']
    out.append(f"KD from the raw teachers vs the student without KD (mean over teachers): "
               f"{_ci_text(kd)}.")
    return out


def write_markdown(results: Dict[str, Any], path: str, figure: Optional[str] = None) -> str:
    """Write the study report: set-up, teacher and student tables, correlations, reading.

    Args:
        results: Output of :func:`summarize`.
        path: Markdown file to write.
        figure: Figure file name to link (relative to the markdown), if any.

    Returns:
        str: ``path``.
    """
    cfg = results['config']
    st = cfg['student']
    rows = results['per_teacher']
    n_seeds = len(cfg['seeds'])
    sizes = results['split_sizes']
    lines = [
        '# Teacher calibration vs. student accuracy (sklearn digits)', '',
        f"- Data: scikit-learn digits (1797 real 8x8 scans), stratified split (seed "
        f"{cfg['split_seed']}): train {sizes['train']} ({sizes['train_augmented']} with the four "
        f"1-pixel shifts), calibration {sizes['cal']} (only to fit T_cal), test {sizes['test']}.",
        f"- Teachers: {len(rows)} MLP recipes (below; family "
        f"`{results.get('family', 'custom')}`); T_cal fitted by NLL (L-BFGS on log T) on "
        'the calibration split; metrics on the test split, ECE/ACE with '
        f"{cfg['n_bins']} bins (equal-width / equal-mass per class).",
        f"- Student: MLP 64-{'-'.join(map(str, st['hidden']))}-10, {st['epochs']} epochs, AdamW "
        f"lr {st['lr']} cosine, batch {st['batch_size']}; KD loss = {cfg['ce_weight']} CE + "
        f"{cfg['kd_weight']} KD (tau = {cfg['tau']}, `mmkdcal.models.losses.KDLoss`), teacher "
        'logits raw or divided by T_cal; same initialisation and batches for both.',
        f"- Seeds: {cfg['seeds']} (each seed retrains every teacher and student). Machine: "
        f"{results['machine']}. Wall time: {results['wall_time_s']:.0f} s.",
    ]
    if results.get('command'):
        lines.append(f"- Command: `{results['command']}`")
    lines.append('')
    if figure:
        lines += [f'![teacher calibration study]({figure})', '']
    lines += ['## Teachers (test split, mean over seeds)', '',
              '| # | teacher | recipe | acc % | ECE | ACE | ECE_o | ECE_u | NLL | T_cal | '
              'ECE after | ACE after | NLL after | direction |',
              '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|']
    notes = {t['name']: t['note'] for t in cfg['teachers']}
    for i, r in enumerate(rows, 1):
        lines.append(
            f"| {i} | {r['teacher']} | {notes.get(r['teacher'], '')} | {_pct(r['acc'])} | "
            f"{r['ece']:.4f} | {r['ace']:.4f} | {r['ece_o']:.4f} | {r['ece_u']:.4f} | "
            f"{r['nll']:.3f} | {r['t_cal']:.3f} | {r['ece_scaled']:.4f} | "
            f"{r['ace_scaled']:.4f} | {r['nll_scaled']:.3f} | {r['direction']} |")
    base = results['baseline_summary']
    lines += ['', '## Students (test accuracy %, mean +- std over seeds)', '',
              f"Student without KD: {_pct(base['mean'])}"
              + (f" +- {_pct(base['std'])}" if base['std'] is not None else '') + '.', '',
              'Teacher on the KD images (the student\'s training images): accuracy and mean '
              'top-label confidence of softmax(z), raw and divided by T_cal.', '',
              '| # | teacher | KD-image acc % | KD-image conf raw / calibrated | student, raw '
              'teacher | student, calibrated teacher | gain (points) |',
              '|---|---|---|---|---|---|---|']
    for i, r in enumerate(rows, 1):
        lines.append(f"| {i} | {r['teacher']} | {_pct(r['kd_acc'])} | {r['kd_conf']:.3f} / "
                     f"{r['kd_conf_scaled']:.3f} | {_pct(r['student_acc_raw'])} +- "
                     f"{_pct(r['student_acc_raw_std'])} | {_pct(r['student_acc_cal'])} +- "
                     f"{_pct(r['student_acc_cal_std'])} | {_pct(r['gain'], True)} +- "
                     f"{_pct(r['gain_std'])} |")
    lines += ['', '## Correlation with student accuracy', '',
              'Per-teacher means over seeds (one point per raw teacher, n = '
              f"{len(rows)}); pooled adds the calibrated teachers (n = {2 * len(rows)}); per-seed: "
              f'the raw correlation within each seed, mean +- std over the {n_seeds} seed(s).', '',
              '| teacher metric | Pearson r (p) | Spearman rho (p) | pooled Pearson r (p) | '
              'pooled Spearman rho (p) | per-seed Pearson r | per-seed Spearman rho |',
              '|---|---|---|---|---|---|---|']

    def rp(c: Dict[str, Any], k: str, pk: str) -> str:
        return 'n/a' if c[k] is None else f'{c[k]:+.3f} ({c[pk]:.2g})'

    def ms(s: Dict[str, Any]) -> str:
        if s['mean'] is None:
            return 'n/a'
        return f"{s['mean']:+.3f}" + (f" +- {s['std']:.3f}" if s['std'] is not None else '')

    corr = results['correlations']
    for key, label in CORR_METRICS.items():
        a, b, s = (corr['per_teacher_raw'][key], corr['per_teacher_pooled'][key],
                   corr['per_seed_summary'][key])
        lines.append(f"| {label} | {rp(a, 'pearson_r', 'pearson_p')} | "
                     f"{rp(a, 'spearman_rho', 'spearman_p')} | {rp(b, 'pearson_r', 'pearson_p')}"
                     f" | {rp(b, 'spearman_rho', 'spearman_p')} | {ms(s['pearson_r'])} | "
                     f"{ms(s['spearman_rho'])} |")
    lines += ['', '## Gain of calibrating the teacher (student accuracy, calibrated - raw)', '',
              '| teachers | mean (points) | std over seeds | 95% CI | pairs | positive | '
              'negative |', '|---|---|---|---|---|---|---|']
    for group, label in (('all', 'all'), ('over', 'over-confident (T_cal > 1)'),
                         ('under', 'under-confident (T_cal < 1)')):
        g = results['gain'][group]
        s = g['over_seeds']
        if s['mean'] is None:
            lines.append(f'| {label} | n/a | n/a | n/a | 0 | n/a | n/a |')
            continue
        ci = ('n/a' if s['ci95_low'] is None else
              f"[{_pct(s['ci95_low'], True)}, {_pct(s['ci95_high'], True)}]")
        lines.append(f"| {label} | {_pct(s['mean'], True)} | "
                     f"{'n/a' if s['std'] is None else _pct(s['std'])} | {ci} | {g['pairs']} | "
                     f"{100 * g['frac_positive']:.0f}% | {100 * g['frac_negative']:.0f}% |")
    lines += ['', 'The mean and its spread are over seeds: for each seed, the mean gain of the '
              "group's (teacher, seed) pairs; a teacher's group follows its own T_cal in that "
              'seed.', '', '## Reading', '']
    lines += [f'- {s}' for s in reading(results)]
    lines.append('')
    with open(path, 'w') as f:
        f.write('\n'.join(lines))
    return path


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
    results['command'] = ('python tools/analysis/teacher_calibration_study.py'
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
