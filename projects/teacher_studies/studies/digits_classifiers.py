"""Data, models and training of the classification teacher-calibration study (sklearn digits).

The pieces :mod:`~.teacher_calibration_study` is built from: the digit splits
and their 1-pixel-shift augmentation, the MLP teachers and student (:class:`TrainRecipe` and
the default families), the training loop with an optional KD term, and the measurement of a
teacher before and after temperature scaling. Plain torch; the metrics come from
:mod:`mmkdcal.calibration`.
"""
import math
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from mmkdcal.calibration import ace, ece, ece_over_under, fit_temperature, nll

__all__ = [
    'N_CLASSES', 'FAMILIES', 'TrainRecipe', 'load_digit_splits', 'shift_augment', 'build_mlp',
    'default_teacher_recipes', 'default_student_recipe', 'train_classifier', 'predict_logits',
    'accuracy', 'teacher_metrics'
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
        dict: ``acc, ece, ace, ece_over, ece_under, nll`` and the same with ``_scaled``; ``t_cal``;
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
        out['ece_over' + suffix], out['ece_under' + suffix] = e_o, e_u
        out['nll' + suffix] = nll(p, y_test)
        out['mean_conf' + suffix] = float(p.max(1).values.mean())
        out['nll_cal' + suffix] = nll(torch.softmax(logits_cal.double() / temp, dim=1), y_cal)
    return out


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Top-1 accuracy of ``model`` on ``(x, y)``.

    Args:
        model: A classifier.
        x: Inputs (N, 8, 8).
        y: Labels (N,).

    Returns:
        float: The fraction of correct arg-max predictions.
    """
    return float((predict_logits(model, x).argmax(1) == y).double().mean())
