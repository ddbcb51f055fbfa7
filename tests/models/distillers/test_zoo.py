"""Which distiller a student config takes (``distiller_type``), and the families it refuses."""
import pytest

import mmkdcal  # noqa: F401
from mmkdcal.models.distillers import distiller_type


@pytest.mark.parametrize('student, want', [
    ('FasterRCNN', 'DistillFasterRCNN'),  # its own distiller
    ('RetinaNet', 'DistillRetinaNet'),
    ('FSAF', 'DistillSingleStageDetector'),  # a plain SingleStageDetector subclass
    ('SingleStageDetector', 'DistillSingleStageDetector'),  # SSD's class (its head: refused)
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
    ('YOLOV3', 'YOLOV3 cannot be distilled: its head returns one fused map .* use YOLOX'),
    ('DistillGFL', 'already a distiller'),
    ('NoSuchDetector', 'not a registered model class'),
])
def test_refusals_name_the_class(student, says):
    with pytest.raises(ValueError, match=says):
        distiller_type(dict(type=student))


@pytest.mark.parametrize('student, head, says', [
    ('SingleStageDetector', 'SSDHead', r'SSDHead cannot be distilled: its \(K \+ 1\)-way softmax'
     '.* use RetinaNet or ATSS'),
    ('RetinaNet', 'SABLRetinaHead', 'SABLRetinaHead cannot be distilled: .* side-bucket .* GFL'),
    ('RetinaNet', 'GARetinaHead', 'GARetinaHead cannot be distilled: .* location branch .* '
     'use RetinaNet'),
    ('PAA', 'LADHead', "LADHead cannot be distilled: .* LAD .* give PAAHead"),
])
def test_refused_heads_on_shared_detector_classes(student, head, says):
    fine = distiller_type(dict(type=student, bbox_head=dict(type='RetinaHead')))
    assert fine.startswith('Distill')  # the detector class itself is distilled
    with pytest.raises(ValueError, match=says):
        distiller_type(dict(type=student, bbox_head=dict(type=head)))
