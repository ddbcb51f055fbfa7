"""Which distiller a student config takes (``distiller_type``), and the families it refuses."""
import os.path as osp

import pytest
from mmengine.config import Config

import mmdet
from mmdet.registry import MODELS

import mmkdcal  # noqa: F401
from mmkdcal.models.distillers import distiller_type
from mmkdcal.models.distillers.zoo import REFUSED_DETECTORS, REFUSED_PARTS


@pytest.mark.parametrize('student, want', [
    ('FasterRCNN', 'DistillFasterRCNN'),  # its own distiller
    ('RetinaNet', 'DistillRetinaNet'),
    ('FSAF', 'DistillSingleStageDetector'),  # a plain SingleStageDetector subclass
    ('SingleStageDetector', 'DistillSingleStageDetector'),  # SSD's class (its head: refused)
    ('GridRCNN', 'DistillTwoStageDetector'),
    ('DINO', 'DistillDINO'),
    ('CondInst', 'DistillSingleStageInstanceSegmentor'),  # instance segmentors with a box head
    ('BoxInst', 'DistillSingleStageInstanceSegmentor'),
    ('YOLACT', 'DistillSingleStageInstanceSegmentor'),  # a sigmoid one (stock: refused at build)
    ('RTMDet', 'DistillRTMDet'),  # RTMDet-Ins too (RTMDetInsSepBNHead)
])
def test_the_distiller_of_each_student_class(student, want):
    assert distiller_type(dict(type=student)) == want


@pytest.mark.parametrize('student, says', [
    ('SOLO', 'SOLO cannot be distilled: it segments by location grid cells with no box head'
     r'.* use Mask R-CNN or RTMDet-Ins'),
    ('SOLOv2', 'SOLOv2 cannot be distilled: it segments by location grid cells'),
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


@pytest.mark.parametrize('config, distiller, says', [
    ('sparse_rcnn/sparse-rcnn_r50_fpn_1x_coco.py', 'DistillTwoStageDetector',
     r'SparseRCNN cannot be distilled: .* Cascade R-CNN.* \(model.roi_head is a SparseRoIHead\)'),
    ('queryinst/queryinst_r50_fpn_1x_coco.py', 'DistillTwoStageDetector',
     r'QueryInst cannot be distilled: .* Cascade R-CNN.* \(model.roi_head.mask_head.0 is a '
     r'DynamicMaskHead\)'),
    ('pisa/faster-rcnn_r50_fpn_pisa_1x_coco.py', 'DistillFasterRCNN',
     r'PISA cannot be distilled: .*ISR-P.* use Faster R-CNN \(model.roi_head is a PISARoIHead\)'),
    ('mask2former/mask2former_r50_8xb2-lsj-50e_coco.py', 'DistillSingleStageDetector',
     r'Mask2Former cannot be distilled: .* use Mask R-CNN .*\(model.panoptic_head is a '
     r'Mask2FormerHead\)'),
    ('ld/ld_r18-gflv1-r101_fpn_1x_coco.py', 'DistillGFL',
     r'KnowledgeDistillationSingleStageDetector cannot be distilled: it is already a distiller'
     r'.* \(GFL, PAA\).* \(model.bbox_head is a LDHead\)'),
    ('yolact/yolact_r50_1xb8-55e_coco.py', 'DistillSingleStageInstanceSegmentor',
     r'YOLACT cannot be distilled: its class scores are a \(K \+ 1\)-way softmax.* set '
     r'loss_cls.use_sigmoid=True and use_ohem=False, or use RTMDet-Ins or CondInst '
     r'\(model.bbox_head\)'),
    ('ssd/ssd300_coco.py', 'DistillSingleStageDetector',
     r'SSDHead cannot be distilled: .* use RetinaNet or ATSS \(model.bbox_head is a SSDHead\)'),
])
def test_a_refused_family_is_refused_by_any_distiller_before_the_teacher(tmp_path, config,
                                                                         distiller, says):
    """The family's stock mmdet config under a distiller class that would take its detector
    class: refused at build with the family, the reason and the alternative, before the teacher's
    weights (a missing file here) are read."""
    cfg = Config.fromfile(osp.join(osp.dirname(mmdet.__file__), '.mim', 'configs', config))
    model = dict(cfg.model.to_dict(), type=distiller, teacher_ckpt=str(tmp_path / 'none.pth'))
    model.setdefault('teacher_config', cfg.model.to_dict())
    with pytest.raises(ValueError, match=says):
        MODELS.build(model)


def test_each_refused_part_is_an_mmdet_class_of_a_refused_family():
    assert [p for p in REFUSED_PARTS if MODELS.get(p) is None] == []
    assert [f for f in REFUSED_PARTS.values() if f not in REFUSED_DETECTORS] == []
