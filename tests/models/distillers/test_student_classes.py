"""One rule makes a distiller of a student class: ``Distill<Student>(<kind distiller>, <Student>)``,
explicit, registered, importable and picklable by name; the retired ``student_type`` key is
refused at build time, naming the class to use."""
import copy
import importlib
import pickle

import pytest
import torch
from mmengine.config import ConfigDict

import mmkdcal  # noqa: F401
import mmkdcal.models.distillers as distillers
from mmdet.registry import MODELS
from mmkdcal.models.distillers import (DETRDistillerMixin, DistillerMixin,
                                       DistillSingleStageDetector, DistillTwoStageDetector)

from _families import FAMILIES, input_size, tiny_model
from _helpers import batch, save_teacher

torch.set_num_threads(1)

#: The student classes the project distils (README, docs/distillation_protocol.md), by kind.
SINGLE_STAGE = ('RetinaNet', 'GFL', 'ATSS', 'FCOS', 'RTMDet', 'TOOD', 'YOLOX', 'VFNet', 'PAA',
                'DDOD', 'CenterNet')
TWO_STAGE_STUDENTS = ('FasterRCNN', 'MaskRCNN', 'CascadeRCNN')
DETR_STUDENTS = ('DETR', 'ConditionalDETR', 'DeformableDETR', 'DINO')


def _distiller_classes():
    return [obj for name in distillers.__all__ for obj in [getattr(distillers, name)]
            if isinstance(obj, type) and issubclass(obj, DistillerMixin)
            and obj.STUDENT_CLASS is not None and obj.__name__.startswith('Distill')]


@pytest.mark.parametrize('student,kind', [(s, DistillSingleStageDetector) for s in SINGLE_STAGE]
                         + [(s, DistillTwoStageDetector) for s in TWO_STAGE_STUDENTS]
                         + [(s, DETRDistillerMixin) for s in DETR_STUDENTS])
def test_every_family_has_its_explicit_registered_class(student, kind):
    cls = MODELS.get(f'Distill{student}')
    student_cls = MODELS.get(student)
    assert cls is not None and cls.__bases__ == (kind, student_cls)
    assert cls.STUDENT_CLASS is student_cls and issubclass(cls, student_cls)
    # importable by name from the package and from its module (what pickle looks up)
    assert getattr(distillers, cls.__name__) is cls
    assert getattr(importlib.import_module(cls.__module__), cls.__qualname__) is cls


def test_naming_rule_holds_for_every_exported_distiller():
    classes = _distiller_classes()
    assert len(classes) == len(SINGLE_STAGE) + len(TWO_STAGE_STUDENTS) + len(DETR_STUDENTS) + 4
    for cls in classes:
        assert cls.__name__ == f'Distill{cls.STUDENT_CLASS.__name__}', cls
        assert cls.__bases__[-1] is cls.STUDENT_CLASS
        assert MODELS.get(cls.__name__) is cls
    # the kind distillers distil the plain class of their kind
    assert DistillSingleStageDetector.STUDENT_CLASS.__name__ == 'SingleStageDetector'
    assert DistillTwoStageDetector.STUDENT_CLASS.__name__ == 'TwoStageDetector'
    # every family the tests shrink from mmdet's configs has its class, or (a plain
    # SingleStageDetector subclass such as FSAF, a SingleStageInstanceSegmentor subclass such
    # as CondInst) its kind's
    for family in FAMILIES:
        cfg = tiny_model(family)
        kind = ('DistillSingleStageInstanceSegmentor' if 'mask_head' in cfg
                else 'DistillSingleStageDetector')
        want = (f"Distill{cfg['type']}" if MODELS.get(f"Distill{cfg['type']}") is not None
                else kind)
        assert distillers.distiller_type(cfg) == want, family


def test_the_student_class_comes_after_the_distiller_in_the_mro():
    """The distiller's overrides (loss, train, _apply, state_dict hooks) win over the student's,
    and the student's own class sits before its kind's base (RTMDet before
    SingleStageDetector), so its own methods are used."""
    from mmdet.models.detectors import RTMDet, SingleStageDetector
    mro = distillers.DistillRTMDet.__mro__
    assert mro.index(DistillerMixin) < mro.index(RTMDet) < mro.index(SingleStageDetector)
    assert distillers.DistillRTMDet.loss is DistillerMixin.loss
    assert distillers.DistillRTMDet.__init__ is DistillSingleStageDetector.__init__


@pytest.fixture(scope='module')
def rtmdet(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('rtmdet')
    cfg = tiny_model('rtmdet')
    t_path, t_ckpt, _ = save_teacher(cfg, tmp, seed=1)
    return cfg, t_path, t_ckpt


def test_student_type_is_refused_naming_the_class(rtmdet):
    cfg, t_path, t_ckpt = rtmdet
    with pytest.raises(ValueError, match=r"model.student_type='RTMDet' is gone: .* use "
                                         r"type='DistillRTMDet'"):
        MODELS.build(ConfigDict(dict(cfg, type='DistillSingleStageDetector',
                                     student_type='RTMDet', teacher_config=t_path,
                                     teacher_ckpt=t_ckpt, teacher_temperature=1.0)))
    with pytest.raises(ValueError, match=r"model.student_type='Nope' is gone and mmkdcal has no "
                                         r"DistillNope class: .*class DistillX\("
                                         r"DistillSingleStageDetector, X\)"):
        MODELS.build(ConfigDict(dict(cfg, type='DistillSingleStageDetector',
                                     student_type='Nope', teacher_config=t_path,
                                     teacher_ckpt=t_ckpt, teacher_temperature=1.0)))


def test_a_distiller_pickles_and_copies_by_name_and_loads_into_the_stock_student(rtmdet):
    cfg, t_path, t_ckpt = rtmdet
    torch.manual_seed(0)
    model = MODELS.build(ConfigDict(dict(
        copy.deepcopy(cfg), type='DistillRTMDet', teacher_config=t_path, teacher_ckpt=t_ckpt,
        teacher_temperature=2.0,
        distill_losses=dict(loss_kd=dict(type='BinaryKDLoss', inputs='cls', beta=1.0)))))
    model.eval()
    data = batch(model, size=input_size('rtmdet'))
    with torch.no_grad():
        want = model.bbox_head(model.extract_feat(data['inputs']))[0][0]
    blob = pickle.dumps(model)  # the class is stored by its module and name
    assert b'mmkdcal.models.distillers.distill_single_stage' in blob
    for other in (pickle.loads(blob), copy.deepcopy(model)):
        assert type(other) is distillers.DistillRTMDet
        assert other.state_dict().keys() == model.state_dict().keys()
        assert all(torch.equal(v, model.state_dict()[k]) for k, v in other.state_dict().items())
        assert float(other.teacher_temperature) == 2.0
        with torch.no_grad():
            got = other.bbox_head(other.extract_feat(data['inputs']))[0][0]
            t_got = other.teacher.bbox_head(other.teacher.extract_feat(data['inputs']))[0][0]
            t_want = model.teacher.bbox_head(model.teacher.extract_feat(data['inputs']))[0][0]
        assert torch.equal(got, want) and torch.equal(t_got, t_want)
    assert copy.deepcopy(model).teacher is model.teacher  # EMA copies share the frozen teacher
    stock = MODELS.build(ConfigDict(copy.deepcopy(cfg)))
    result = stock.load_state_dict(model.state_dict(), strict=True)
    assert not result.missing_keys and not result.unexpected_keys


def test_two_stage_family_class_is_the_student_class(tmp_path):
    cfg = tiny_model('faster_rcnn')
    t_path, t_ckpt, _ = save_teacher(cfg, tmp_path, seed=1)
    model = MODELS.build(ConfigDict(dict(copy.deepcopy(cfg), type='DistillFasterRCNN',
                                         teacher_config=t_path, teacher_ckpt=t_ckpt,
                                         teacher_temperature=1.0)))
    assert isinstance(model, MODELS.get('FasterRCNN'))
    assert type(pickle.loads(pickle.dumps(model))) is distillers.DistillFasterRCNN
