"""What the calibration pass's ground truth leaves out of its annotation file (by the rules of
mmdet's ``CocoDataset.parse_data_info``), warned above :data:`WARN_SHARE` and refused above
:data:`REFUSE_SHARE` of invalid boxes (docs/usage.md).
"""
import json
import logging
from dataclasses import dataclass
from typing import Any, Collection, Optional

from mmengine.fileio import get_local_path
from mmengine.logging import print_log

__all__ = ['AnnotationAudit', 'CalibrationAnnotationError', 'REFUSE_SHARE', 'WARN_SHARE',
           'audit_annotations', 'check_calibration_annotations', 'dropped_note']

WARN_SHARE = 0.02
REFUSE_SHARE = 0.2


class CalibrationAnnotationError(ValueError):
    """Too many calibration boxes are invalid for the fitted calibrator to be trusted."""


@dataclass
class AnnotationAudit:
    """Counts of a COCO file's annotations: ``total``; dropped as ``marked_ignore``, ``outside``,
    ``zero_area``, ``other_category``; kept as ignored ``crowd`` regions.
    """
    ann_file: str
    total: int = 0
    marked_ignore: int = 0
    outside: int = 0
    zero_area: int = 0
    other_category: int = 0
    crowd: int = 0

    @property
    def invalid(self) -> int:
        """Boxes dropped because they cannot be right: outside the image or zero area."""
        return self.outside + self.zero_area

    @property
    def used(self) -> int:
        """Boxes the calibration pass matches against."""
        return self.total - self.invalid - self.marked_ignore - self.other_category - self.crowd

    def describe(self) -> str:
        """``'<file>: of N boxes, U are used; dropped: ...'``."""
        parts = [f'{n} {what}' for n, what in (
            (self.outside, 'outside their image'),
            (self.zero_area, 'of zero area (or a side under 1 pixel)'),
            (self.marked_ignore, "marked 'ignore'"),
            (self.other_category, "of a category that is not one of the dataset's classes"),
            (self.crowd, 'crowd regions (kept as ignored)')) if n]
        return (f'{self.ann_file}: of {self.total} boxes, {self.used} are used; '
                f'{", ".join(parts) if parts else "none dropped"}')


def audit_annotations(ann_file: str, cat_ids: Optional[Collection[int]] = None) -> AnnotationAudit:
    """Count a COCO file's annotations (``cat_ids``: the dataset's kept categories, None: all)."""
    with get_local_path(ann_file) as local:
        with open(local) as f:
            coco = json.load(f)
    sizes = {img['id']: (img.get('width', 0), img.get('height', 0))
             for img in coco.get('images', [])}
    keep = None if cat_ids is None else set(cat_ids)
    audit = AnnotationAudit(ann_file)
    for ann in coco.get('annotations', []):
        audit.total += 1
        if ann.get('ignore', False):
            audit.marked_ignore += 1
            continue
        x1, y1, w, h = ann['bbox']
        width, height = sizes.get(ann.get('image_id'), (0, 0))
        inter_w = max(0, min(x1 + w, width) - max(x1, 0))
        inter_h = max(0, min(y1 + h, height) - max(y1, 0))
        if inter_w * inter_h == 0:
            audit.outside += 1
        elif ann.get('area', w * h) <= 0 or w < 1 or h < 1:
            audit.zero_area += 1
        elif keep is not None and ann.get('category_id') not in keep:
            audit.other_category += 1
        elif ann.get('iscrowd', False):
            audit.crowd += 1
    return audit


def _coco_dataset(dataset: Any) -> Any:
    """The dataset that reads the file, through wrappers (``dataset`` / ``datasets[0]``)."""
    while not getattr(dataset, 'ann_file', None):
        inner = getattr(dataset, 'dataset', None)
        if inner is None and getattr(dataset, 'datasets', None):
            inner = dataset.datasets[0]
        if inner is None:
            return None
        dataset = inner
    return dataset


def check_calibration_annotations(dataset: Any) -> Optional[AnnotationAudit]:
    """Warn or refuse (:class:`CalibrationAnnotationError`) when the calibration dataset's COCO
    file holds many invalid boxes; return the counts, or None without a COCO file.
    """
    coco = _coco_dataset(dataset)
    ann_file = getattr(coco, 'ann_file', None)
    if not (isinstance(ann_file, str) and ann_file.endswith('.json')):
        return None
    try:
        audit = audit_annotations(ann_file, getattr(coco, 'cat_ids', None))
    except (OSError, ValueError, KeyError, TypeError):
        return None  # not a file of this layout: the dataset's own loader has the say
    share = audit.invalid / max(audit.total, 1)
    if share > REFUSE_SHARE:
        raise CalibrationAnnotationError(
            f'{share:.0%} of the calibration boxes are invalid and would be dropped without '
            f'them being fitted against ({audit.describe()}); more than {REFUSE_SHARE:.0%} '
            'makes the fitted calibrator unreliable. Check the boxes of that file: COCO boxes '
            "are [x, y, width, height] in pixels of the image's own 'width' x 'height'.")
    if share > WARN_SHARE:
        print_log(f'{share:.1%} of the calibration boxes are invalid and are left out '
                  f'({audit.describe()}); the calibrator is fitted on the rest.',
                  logger='current', level=logging.WARNING)
    return audit


def dropped_note(audit: Optional[AnnotationAudit]) -> str:
    """The counts of :func:`check_calibration_annotations`, for another message ('' if none)."""
    return f' {audit.describe()}.' if audit is not None else ''
