"""The classes a teacher checkpoint was trained on, as its meta names them.

Kept as ``teacher.dataset_meta``; ``tools/harness/teacher_classes.py`` checks it.
"""
from typing import Any, Optional

__all__ = ['teacher_dataset_meta']


def teacher_dataset_meta(checkpoint: Any) -> Optional[dict]:
    """The dataset meta a loaded checkpoint names, read as mmdet's ``init_detector`` reads it:
    ``meta['dataset_meta']`` (keys lower-cased), ``{'classes': meta['CLASSES']}`` (mmdet 2.x),
    or None."""
    meta = checkpoint.get('meta', None) if isinstance(checkpoint, dict) else None
    if not isinstance(meta, dict):
        return None
    if isinstance(meta.get('dataset_meta', None), dict):
        return {str(k).lower(): v for k, v in meta['dataset_meta'].items()}
    if meta.get('CLASSES', None) is not None:
        return {'classes': meta['CLASSES']}
    return None
