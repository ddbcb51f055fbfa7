"""The classes a teacher checkpoint was trained on, as its meta names them.

MMDetection writes the classes a checkpoint was trained on into ``meta['dataset_meta']['classes']``;
the distiller keeps that as ``teacher.dataset_meta`` when it loads the teacher, so that
``tools/train.py`` can refuse a teacher trained on other classes, or the student's in another order
(:mod:`tools.harness.teacher_classes`).
"""
from typing import Any, Optional

__all__ = ['teacher_dataset_meta']


def teacher_dataset_meta(checkpoint: Any) -> Optional[dict]:
    """The dataset meta a loaded checkpoint names, read as mmdet's ``init_detector`` reads it.

    Args:
        checkpoint: What the checkpoint file holds (a dict with ``meta``, or a bare state dict).

    Returns:
        ``meta['dataset_meta']`` (keys lower-cased), ``{'classes': meta['CLASSES']}`` for
        checkpoints of MMDetection 2.x, or None when the checkpoint names neither.
    """
    meta = checkpoint.get('meta', None) if isinstance(checkpoint, dict) else None
    if not isinstance(meta, dict):
        return None
    if isinstance(meta.get('dataset_meta', None), dict):
        return {str(k).lower(): v for k, v in meta['dataset_meta'].items()}
    if meta.get('CLASSES', None) is not None:
        return {'classes': meta['CLASSES']}
    return None
