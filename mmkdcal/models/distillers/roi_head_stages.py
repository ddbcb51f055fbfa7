"""Which stage of a RoI head is which: one stage, or a cascade's ``ModuleList`` per stage."""
from torch import nn

__all__ = ['is_cascade', 'roi_stage']


def is_cascade(roi_head) -> bool:
    """Whether ``roi_head`` is a cascade (its ``bbox_head`` holds one head per stage).

    Args:
        roi_head: An MMDetection RoI head (``StandardRoIHead``, ``CascadeRoIHead``...).

    Returns:
        bool: True for a cascade.
    """
    return isinstance(getattr(roi_head, 'bbox_head', None), nn.ModuleList)


def roi_stage(modules, stage: int):
    """The part of ``stage`` in a per-stage attribute of a RoI head.

    Args:
        modules: A RoI head's ``bbox_head``, ``mask_head``, ``bbox_assigner``... (one object,
            or a ``ModuleList``/list with one per cascade stage).
        stage: The stage (0-based; a single-stage RoI head has only stage 0).

    Returns:
        The stage's head, assigner or sampler.
    """
    return modules[stage] if isinstance(modules, (nn.ModuleList, list, tuple)) else modules
