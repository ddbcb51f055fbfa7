"""Which distiller a student model config takes; the families refused, each with its reason.

A student of class ``X`` is distilled by ``DistillX`` when mmkdcal has it, else by the distiller
of the nearest base class of ``X`` that has one (``DistillSingleStageDetector`` for a plain
``SingleStageDetector`` such as SSD). The families that cannot be distilled are refused here, at
build time, each with the reason and the nearest supported alternative: by the student's class
(:func:`distiller_type`), and by its parts whichever distiller builds it (:func:`check_student`,
which every distiller calls before it builds its student).
"""
from typing import Any, Dict, Iterator, Tuple

from mmdet.registry import MODELS

__all__ = ['REFUSED_DETECTORS', 'REFUSED_PARTS', 'check_student', 'distiller_type']

#: Families that no distiller takes: detector class (or family) name, or a dense-head class
#: (matched on ``bbox_head.type`` when the head rides a shared detector class such as RetinaNet)
#: -> reason and alternative.
_SOLO = ('it segments by location grid cells with no box head, so no per-prior box or score '
         'pairs with a teacher\'s; use Mask R-CNN or RTMDet-Ins (RTMDet, RTMDetInsSepBNHead)')
_YOLACT = ('its class scores are a (K + 1)-way softmax, which calibration would fit as sigmoid '
           'ones; set loss_cls.use_sigmoid=True and use_ohem=False, or use RTMDet-Ins or CondInst')
_QUERY_ROI = ('its RoI head refines learned proposal boxes and features stage by stage, with no '
              'RPN or sampled RoIs to pair with a teacher; use Cascade R-CNN, or DINO for queries')
_PANOPTIC = ('its panoptic mask head has no box head to distil; use Mask R-CNN (instances) or '
             'DINO (queries)')
_GROUNDING = 'it detects from text prompts; use ATSS or DINO, which detect fixed classes'
_OWN_KD = ('it is already a distiller with its own teacher; give its student config (GFL, PAA) '
           'as the student')
_SOFTMAX = ('its (K + 1)-way softmax class scores have no per-class sigmoid logit, and the '
            'calibration pass fits detection scores as sigmoid ones, so a fitted temperature '
            'would act on another quantity; use RetinaNet or ATSS')
_GUIDED = ('in eval mode its class and box convs run only where its location branch fires on '
           'the first image (zeros elsewhere), and its boxes are deltas from anchor shapes it '
           'predicts itself; use RetinaNet')
REFUSED_DETECTORS: Dict[str, str] = dict(
    SOLO=_SOLO, SOLOv2=_SOLO,
    SparseRCNN=_QUERY_ROI, QueryInst=_QUERY_ROI, Mask2Former=_PANOPTIC, MaskFormer=_PANOPTIC,
    PanopticFPN=_PANOPTIC, GLIP=_GROUNDING, GroundingDINO=_GROUNDING,
    KnowledgeDistillationSingleStageDetector=_OWN_KD, LAD=_OWN_KD,
    DDQDETR=('its dense-to-distinct queries change in number during training, so they cannot be '
             'paired with a teacher\'s; use DINO'),
    DABDETR=('its anchor-box queries have no distiller yet; use Conditional DETR or DINO'),
    RPN=('a proposal network alone has no classes to distil; distil the two-stage detector that '
         'uses it (Faster R-CNN)'),
    TridentFasterRCNN=('its branches share weights and triple the RoIs, which the RoI pairing '
                       'does not follow; use Faster R-CNN'),
    CornerNet=('its corner-pooling heads pair corners by embeddings, with no per-prior class '
               'scores to distil; use CenterNet'),
    SoftTeacher='a semi-supervised teacher-student wrapper; distil its detector config instead',
    Detectron2Wrapper='it runs a Detectron2 model; use the mmdet config of that detector',
    YOLOV3=('its head returns one fused map per level (box, objectness and class channels per '
            'anchor), no class output to distil; use YOLOX (separate class and objectness)'),
    LADHead=('it trains only on the label assignment of the teacher inside mmdet\'s LAD '
             'detector (its loss takes that assignment); give PAAHead (the same outputs)'),
    SABLRetinaHead=('its score is the class score times the confidence of its side-bucket box '
                    'classification, no per-prior factor, so no class logit is the score it '
                    'ranks by; use RetinaNet or GFL'),
    SSDHead=_SOFTMAX, PISASSDHead=_SOFTMAX, GARetinaHead=_GUIDED, GuidedAnchorHead=_GUIDED,
    PISA=('its RoI head computes and reweights its own targets (ISR-P, CARL) instead of calling '
          'its bbox head\'s loss_and_target, where the RoI pairing taps them; use Faster R-CNN'))

#: Parts that mark a refused family whatever the distiller's class: part class (or a base of it)
#: -> family, a key of REFUSED_DETECTORS. Inner parts come first (QueryInst's mask head first).
REFUSED_PARTS: Dict[str, str] = dict(
    SparseRoIHead='SparseRCNN', DynamicMaskHead='QueryInst', PISARoIHead='PISA',
    Mask2FormerHead='Mask2Former', MaskFormerHead='MaskFormer',
    LDHead='KnowledgeDistillationSingleStageDetector', TridentRoIHead='TridentFasterRCNN',
    SOLOHead='SOLO', SOLOV2Head='SOLOv2', DABDETRHead='DABDETR', DDQDETRHead='DDQDETR',
    YOLOV3Head='YOLOV3', LADHead='LADHead',
    SABLRetinaHead='SABLRetinaHead', SSDHead='SSDHead', PISASSDHead='PISASSDHead',
    GuidedAnchorHead='GuidedAnchorHead')


def distiller_type(model: dict) -> str:
    """The registered distiller type for a student model config; ValueError with the reason
    for a refused family.

    Args:
        model: The student's model config (its ``type`` is the detector class).
    """
    name = model['type']
    for refused in (name, (model.get('bbox_head') or {}).get('type')):
        if refused in REFUSED_DETECTORS:
            raise ValueError(f'{refused} cannot be distilled: {REFUSED_DETECTORS[refused]}')
    student = MODELS.get(name)
    if student is None:
        raise ValueError(f'model.type {name!r} is not a registered model class.')
    if hasattr(student, 'STUDENT_CLASS'):  # a DistillerMixin
        raise ValueError(f'model.type {name!r} is already a distiller: give the student config.')
    kinds = {cls.STUDENT_CLASS: key for key, cls in MODELS.module_dict.items()
             if getattr(cls, 'STUDENT_CLASS', None) is not None
             and key == f'Distill{cls.STUDENT_CLASS.__name__}'}
    for klass in student.__mro__:
        if klass in kinds:
            return kinds[klass]
    raise ValueError(f'{name} has no distiller: mmkdcal distils single-stage and two-stage '
                     'detectors and DETR-like detectors, and no base class of it is one.')


def check_student(student: Dict[str, Any]) -> None:
    """Raise ValueError when a part of the student marks a refused family (REFUSED_PARTS), or
    its YOLACT head scores by softmax.

    Args:
        student: The student's keyword arguments (``backbone``, ``roi_head``, ... as configs).
    """
    head = student.get('bbox_head') or {}
    if head.get('type') == 'YOLACTHead' and not (head.get('loss_cls') or {}).get('use_sigmoid'):
        raise ValueError(f'YOLACT cannot be distilled: {_YOLACT} (model.bbox_head).')
    for path, kind in _parts(student, 'model'):
        part = MODELS.get(kind) if isinstance(kind, str) else kind
        for klass in part.__mro__ if isinstance(part, type) else ():
            if klass.__name__ in REFUSED_PARTS:
                family = REFUSED_PARTS[klass.__name__]
                raise ValueError(f'{family} cannot be distilled: {REFUSED_DETECTORS[family]} '
                                 f'({path} is a {part.__name__}).')


def _parts(cfg: Any, path: str) -> Iterator[Tuple[str, Any]]:
    """(path, type) of every config with a ``type`` under ``cfg``, the inner ones first."""
    items = (cfg.items() if isinstance(cfg, dict)
             else enumerate(cfg) if isinstance(cfg, (list, tuple)) else ())
    for key, value in items:
        yield from _parts(value, f'{path}.{key}')
    if isinstance(cfg, dict) and cfg.get('type') is not None:
        yield path, cfg['type']
