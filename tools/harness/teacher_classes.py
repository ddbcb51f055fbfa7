"""The teacher's classes against the student's: same names, same order, or no training.

A teacher checkpoint trained on the student's classes in another order has output channel ``k``
for another class than the student's label ``k``. Its weights load (the shapes agree), T is
fitted, and KD teaches every class from another class's scores. The distiller keeps the classes
the checkpoint names as ``teacher.dataset_meta``
(:func:`mmkdcal.models.distillers.teacher_classes.teacher_dataset_meta`), and
:func:`check_teacher_classes` compares them with the student's training classes, taken from the
config (``train_dataloader.dataset.metainfo.classes``, else the dataset class's ``METAINFO``),
before training starts. When either list is unknown it says that the order could not be checked.
"""
import logging
from typing import Any, Optional, Sequence, Tuple

import torch.nn as nn
from mmengine.config import Config
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper

from mmdet.registry import DATASETS

__all__ = ['TeacherClassesError', 'check_teacher_classes', 'student_classes']


class TeacherClassesError(ValueError):
    """The teacher checkpoint was trained on other classes, or the same ones in another order."""


def _dataset_classes(dataset_cfg: Any) -> Optional[Tuple[str, ...]]:
    if not isinstance(dataset_cfg, dict):
        return None
    classes = (dataset_cfg.get('metainfo', None) or {}).get('classes', None)
    if classes is not None:
        return tuple(str(c) for c in classes)
    inner = dataset_cfg.get('dataset', None)  # RepeatDataset, ClassBalancedDataset, ...
    if inner is None and dataset_cfg.get('datasets', None):
        inner = dataset_cfg['datasets'][0]  # ConcatDataset: its parts share their classes
    if inner is not None:
        return _dataset_classes(inner)
    kind = dataset_cfg.get('type', None)
    cls = DATASETS.get(kind) if isinstance(kind, str) else kind
    classes = (getattr(cls, 'METAINFO', None) or {}).get('classes', None)
    return tuple(str(c) for c in classes) if classes is not None else None


def student_classes(cfg: Config) -> Optional[Tuple[str, ...]]:
    """The classes the student trains on, in label order, as the config gives them.

    Args:
        cfg: The full training config.

    Returns:
        ``train_dataloader.dataset.metainfo.classes`` (looking through dataset wrappers), else
        the ``METAINFO['classes']`` of the dataset class; None when neither is known.
    """
    loader = cfg.get('train_dataloader', None) or {}
    return _dataset_classes(loader.get('dataset', None))


def _describe(teacher: Sequence[str], student: Sequence[str]) -> str:
    if sorted(teacher) == sorted(student):
        moved = [f"the student's {s!r} gets the teacher's {t!r}"
                 for s, t in zip(student, teacher) if s != t]
        return (f'the same classes in another order ({", ".join(moved[:4])}'
                f'{" ..." if len(moved) > 4 else ""})')
    only_t = [c for c in teacher if c not in student]
    only_s = [c for c in student if c not in teacher]
    return (f'other classes: {len(teacher)} in the teacher, {len(student)} in the student; only '
            f'in the teacher: {only_t[:6]}, only in the student: {only_s[:6]}')


def check_teacher_classes(model: nn.Module, cfg: Config) -> None:
    """Refuse a teacher whose checkpoint names other classes, or another order, than the student.

    Does nothing for a model without a teacher. Logs a warning when the teacher checkpoint's meta
    names no classes, or the config does not say the student's: then the order is unchecked.

    Args:
        model: The built model (a distiller, possibly in a DDP wrapper).
        cfg: The full training config.

    Raises:
        TeacherClassesError: naming both lists, the checkpoint and the fix.
    """
    if is_model_wrapper(model):
        model = model.module
    teacher = getattr(model, 'teacher', None)
    if teacher is None:
        return
    ckpt = getattr(model, 'teacher_ckpt', None)
    meta = getattr(teacher, 'dataset_meta', None) or {}
    t_classes = meta.get('classes', None) if isinstance(meta, dict) else None
    s_classes = student_classes(cfg)
    if t_classes is None or s_classes is None:
        missing = (f"the teacher checkpoint {ckpt!r} names no classes (meta['dataset_meta']"
                   "['classes'])" if t_classes is None else
                   "the config names no student classes (train_dataloader.dataset.metainfo."
                   "classes)")
        print_log(f'{missing}, so whether the teacher orders its classes as the student does '
                  'could not be checked; a teacher trained on another class order teaches every '
                  'class wrong.', logger='current', level=logging.WARNING)
        return
    t_classes = tuple(str(c) for c in t_classes)
    if t_classes == s_classes:
        return
    raise TeacherClassesError(
        f'model.teacher_ckpt {ckpt!r} was trained on {_describe(t_classes, s_classes)}. '
        f'Teacher classes (its meta): {list(t_classes)}; student classes '
        f'(train_dataloader.dataset): {list(s_classes)}. Its outputs would teach each student '
        'class from another class. Use a teacher checkpoint trained on the student\'s classes in '
        'the student\'s order.')
