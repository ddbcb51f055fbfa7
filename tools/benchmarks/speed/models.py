"""The detector pairs the benchmarks build: stock MMDetection configs with random weights."""
import copy
import os.path as osp
from typing import Dict, Optional, Tuple

import torch

__all__ = ['PAIRS', 'build_distiller', 'build_pair', 'build_random_teacher', 'build_student',
           'distill_losses_for', 'load_model_cfg', 'num_classes_of', 'save_random_teacher',
           'shrink_model_cfg']

#: Stock MMDetection configs of each benchmarked pair: (student, teacher), as in configs/*/kd_*.py.
PAIRS: Dict[str, Tuple[str, str]] = {
    'gfl': ('mmdet::gfl/gfl_r50_fpn_1x_coco.py', 'mmdet::gfl/gfl_r101_fpn_ms-2x_coco.py'),
    'retinanet': ('mmdet::retinanet/retinanet_r50_fpn_1x_coco.py',
                  'mmdet::retinanet/retinanet_r101_fpn_ms-640-800-3x_coco.py'),
    'faster_rcnn': ('mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py',
                    'mmdet::faster_rcnn/faster-rcnn_r101_fpn_ms-3x_coco.py'),
}

#: Heads whose stock norm layer is GroupNorm(32), which a shrunk width cannot split.
_GN_HEADS = ('GFLHead', 'LDHead', 'ATSSHead', 'FCOSHead')


def load_model_cfg(name: str):
    """The ``model`` dict of a stock MMDetection config, with the backbone's pretrained init off.

    Args:
        name: ``'mmdet::<family>/<config>.py'`` or a config file path.

    Returns:
        A deep copy of the model config (a ``ConfigDict``: two-stage detectors read their
        ``train_cfg`` by attribute). Nothing is downloaded when it is built.
    """
    from mmengine.config import Config
    if name.startswith('mmdet::'):
        from mmengine.hub import get_config
        cfg = get_config(name)
    else:
        cfg = Config.fromfile(name)
    model = copy.deepcopy(cfg.model)
    model['backbone']['init_cfg'] = None
    model['backbone'].pop('pretrained', None)
    return model


def shrink_model_cfg(cfg, base_channels: int = 8, channels: int = 16, num_classes: int = 3):
    """A toy version of a stock detector config: same layout and depth, tiny widths.

    For tests and toy runs: the ResNet keeps its depth (so an R-101 teacher stays deeper than an
    R-50 student) with ``base_channels`` in its first stage; FPN and heads get ``channels``
    channels, one conv per head tower, GroupNorm with 4 groups, ``num_classes`` classes.

    Args:
        cfg: A model dict from :func:`load_model_cfg` (GFL, RetinaNet, ATSS, FCOS, Faster R-CNN).
        base_channels: ResNet width of the first stage.
        channels: FPN and head width (a multiple of 4).
        num_classes: Classes of the head(s).

    Returns:
        A modified deep copy.
    """
    cfg = copy.deepcopy(cfg)
    backbone = cfg['backbone']
    expansion = 1 if backbone['depth'] < 50 else 4
    backbone['base_channels'] = base_channels
    cfg['neck']['in_channels'] = [base_channels * expansion * 2**i for i in range(4)]
    cfg['neck']['out_channels'] = channels
    if 'bbox_head' in cfg:
        head = cfg['bbox_head']
        head.update(in_channels=channels, feat_channels=channels, stacked_convs=1,
                    num_classes=num_classes)
        if head['type'] in _GN_HEADS:
            head['norm_cfg'] = dict(type='GN', num_groups=4, requires_grad=True)
    else:
        cfg['rpn_head'].update(in_channels=channels, feat_channels=channels)
        roi = cfg['roi_head']
        roi['bbox_roi_extractor']['out_channels'] = channels
        roi['bbox_head'].update(in_channels=channels, fc_out_channels=2 * channels,
                                num_classes=num_classes)
    return cfg


def num_classes_of(cfg) -> int:
    """Number of object classes of a single- or two-stage detector config."""
    head = cfg['roi_head']['bbox_head'] if 'roi_head' in cfg else cfg['bbox_head']
    return int(head['num_classes'])


def distill_losses_for(student_cfg: dict, ld: bool = False) -> Dict[str, dict]:
    """The distillation losses of the project's KD configs for this kind of detector.

    Args:
        student_cfg: The student's model dict.
        ld: Also add localisation distillation on GFL's box distributions (``LDLoss``, 'reg').

    Returns:
        The ``distill_losses`` dict of the distiller.
    """
    if 'roi_head' in student_cfg:
        return dict(loss_kd_roi=dict(type='KDLoss', inputs='roi_cls', tau=1.0, loss_weight=1.0))
    losses = dict(loss_kd_cls=dict(type='BinaryKDLoss', inputs='cls', tau=1.0, beta=1.0,
                                   loss_weight=1.0))
    if ld:
        if student_cfg['bbox_head']['type'] != 'GFLHead':
            raise ValueError(f"--ld needs a GFL head (box distributions), the student has "
                             f"{student_cfg['bbox_head']['type']}; drop --ld for this model.")
        losses['loss_ld'] = dict(type='LDLoss', inputs='reg', tau=10.0, loss_weight=0.25)
    return losses


def build_random_teacher(teacher_cfg: dict, seed: int = 0):
    """The teacher detector with seeded random weights (those :func:`save_random_teacher`
    saves)."""
    from mmdet.registry import MODELS
    torch.manual_seed(seed)
    teacher = MODELS.build(copy.deepcopy(teacher_cfg))
    teacher.init_weights()
    return teacher


def save_random_teacher(teacher_cfg: dict, path: str, seed: int = 0) -> str:
    """Build the teacher with seeded random weights and save them as a plain checkpoint.

    Args:
        teacher_cfg: Teacher model dict.
        path: Where the checkpoint (``{'state_dict': ..., 'meta': {}}``) is written.
        seed: Seed of the weights.

    Returns:
        ``path``.
    """
    teacher = build_random_teacher(teacher_cfg, seed)
    torch.save({'state_dict': teacher.state_dict(), 'meta': {}}, path)
    return path


def build_student(student_cfg: dict, seed: int = 1):
    """The stock student detector with seeded random weights, in train mode."""
    from mmdet.registry import MODELS
    torch.manual_seed(seed)
    student = MODELS.build(copy.deepcopy(student_cfg))
    student.init_weights()
    student.train()
    return student


def build_distiller(student_cfg: dict, teacher_cfg: dict, teacher_ckpt: str,
                    distill_losses: Dict[str, dict], temperature: Optional[float],
                    student_state: Optional[dict] = None,
                    teacher_inference: Optional[dict] = None):
    """An mmkdcal distiller built from config, as a training config builds it.

    Args:
        student_cfg: Student model dict (a stock detector).
        teacher_cfg: Teacher model dict.
        teacher_ckpt: The teacher checkpoint.
        distill_losses: The distiller's ``distill_losses``.
        temperature: Fixed calibration temperature (``teacher_temperature``).
        student_state: Student weights to start from (strictly loaded), e.g. those of the
            plain student the distiller is compared with.
        teacher_inference: The distiller's ``teacher_inference`` (None: its defaults).

    Returns:
        ``DistillSingleStageDetector`` or ``DistillTwoStageDetector``, in train mode.
    """
    from mmdet.registry import MODELS
    dcfg = copy.deepcopy(student_cfg)
    dcfg['type'] = ('DistillTwoStageDetector' if 'roi_head' in student_cfg
                    else 'DistillSingleStageDetector')
    dcfg.update(teacher_config=copy.deepcopy(teacher_cfg), teacher_ckpt=teacher_ckpt,
                teacher_temperature=temperature, distill_losses=copy.deepcopy(distill_losses),
                teacher_inference=teacher_inference)
    distiller = MODELS.build(dcfg)
    if student_state is not None:
        distiller.load_state_dict(student_state, strict=True)
    distiller.train()
    return distiller


def build_pair(student_cfg: dict, teacher_cfg: dict, distill_losses: Dict[str, dict],
               temperature: float, ckpt_dir: str, seed: int = 0):
    """The stock student and a distiller that starts from the same student weights.

    The teacher is randomly initialised (seeded), saved to ``ckpt_dir/teacher.pth`` and loaded
    by the distiller from there, as in a real run.

    Args:
        student_cfg: Student model dict (a stock detector).
        teacher_cfg: Teacher model dict.
        distill_losses: The distiller's ``distill_losses``.
        temperature: Fixed calibration temperature of the teacher.
        ckpt_dir: Where the teacher checkpoint is written.
        seed: Seed of the random weights (teacher ``seed``, student ``seed + 1``).

    Returns:
        ``(student, distiller)``, both on CPU in train mode.
    """
    ckpt = save_random_teacher(teacher_cfg, osp.join(ckpt_dir, 'teacher.pth'), seed)
    student = build_student(student_cfg, seed + 1)
    distiller = build_distiller(student_cfg, teacher_cfg, ckpt, distill_losses, temperature,
                                student_state=student.state_dict())
    return student, distiller
