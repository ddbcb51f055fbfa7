"""Which distiller a student config takes (``distiller_type``), and the families it refuses."""
import pytest

import mmkdcal  # noqa: F401
from mmkdcal.models.distillers import distiller_type


@pytest.mark.parametrize('student, want', [
    ('FasterRCNN', 'DistillFasterRCNN'),  # its own distiller
    ('RetinaNet', 'DistillRetinaNet'),
    ('FSAF', 'DistillSingleStageDetector'),  # a plain SingleStageDetector subclass
    ('SingleStageDetector', 'DistillSingleStageDetector'),  # SSD's class
    ('GridRCNN', 'DistillTwoStageDetector'),
    ('DINO', 'DistillDINO'),
])
def test_the_distiller_of_each_student_class(student, want):
    assert distiller_type(dict(type=student)) == want


@pytest.mark.parametrize('student, says', [
    ('SOLO', 'SOLO cannot be distilled: a single-stage instance segmentor .* Mask R-CNN'),
    ('SparseRCNN', 'SparseRCNN cannot be distilled: .* no RPN .* Cascade R-CNN'),
    ('CornerNet', 'CornerNet cannot be distilled: its corner-pooling .* CenterNet'),
    ('DDQDETR', 'DDQDETR cannot be distilled: .* use DINO'),
    ('Detectron2Wrapper', 'Detectron2Wrapper cannot be distilled: it runs a Detectron2 model'),
    ('DistillGFL', 'already a distiller'),
    ('NoSuchDetector', 'not a registered model class'),
])
def test_refusals_name_the_class(student, says):
    with pytest.raises(ValueError, match=says):
        distiller_type(dict(type=student))
