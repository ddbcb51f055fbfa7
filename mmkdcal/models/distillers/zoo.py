"""Which distiller a student model config takes; the families refused, each with its reason.

A student of class ``X`` is distilled by ``DistillX`` when mmkdcal has it, else by the distiller
of the nearest base class of ``X`` that has one (``DistillSingleStageDetector`` for a plain
``SingleStageDetector`` such as SSD). The families that cannot be distilled are refused here, at
build time, each with the reason and the nearest supported alternative.
"""
from typing import Dict

from mmdet.registry import MODELS

from .distiller_mixin import DistillerMixin

__all__ = ['REFUSED_DETECTORS', 'distiller_type']

#: Detector classes that no distiller takes: class name -> reason and alternative.
REFUSED_DETECTORS: Dict[str, str] = {}


def distiller_type(model: dict) -> str:
    """The registered distiller type for a student model config; ValueError with the reason
    for a refused family.

    Args:
        model: The student's model config (its ``type`` is the detector class).
    """
    name = model['type']
    if name in REFUSED_DETECTORS:
        raise ValueError(f'{name} cannot be distilled: {REFUSED_DETECTORS[name]}')
    student = MODELS.get(name)
    if student is None:
        raise ValueError(f'model.type {name!r} is not a registered model class.')
    if isinstance(student, type) and issubclass(student, DistillerMixin):
        raise ValueError(f'model.type {name!r} is already a distiller: give the student config.')
    kinds = {cls.STUDENT_CLASS: key for key, cls in MODELS.module_dict.items()
             if isinstance(cls, type) and issubclass(cls, DistillerMixin)
             and cls.STUDENT_CLASS is not None and key == f'Distill{cls.STUDENT_CLASS.__name__}'}
    for klass in student.__mro__:
        if klass in kinds:
            return kinds[klass]
    raise ValueError(f'{name} has no distiller: mmkdcal distils single-stage and two-stage '
                     'detectors and DETR-like detectors, and no base class of it is one.')
