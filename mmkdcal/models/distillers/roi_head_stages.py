"""Which stage of a RoI head is which: one stage, or a cascade's ``ModuleList`` per stage."""
from torch import nn

__all__ = ['is_cascade', 'roi_stage']


def is_cascade(roi_head) -> bool:
    """Whether an MMDetection RoI head is a cascade (its ``bbox_head`` holds one per stage)."""
    return isinstance(getattr(roi_head, 'bbox_head', None), nn.ModuleList)


def roi_stage(modules, stage: int):
    """The part of ``stage`` (0-based) in a per-stage attribute of a RoI head (``bbox_head``,
    ``mask_head``...: one object, or one per cascade stage)."""
    return modules[stage] if isinstance(modules, (nn.ModuleList, list, tuple)) else modules
