# A teacher of another head family: GFL R-101 (ms-2x) -> RetinaNet R-50 (1x) on COCO
# (docs/heterogeneous.md). RetinaNet's logits cannot be compared with GFL's prior by prior (9
# anchors against 1, focal against quality focal loss), so the pair distils what it allows:
# - PKD on the FPN levels paired by stride (both 8-128, 256 wide: no adapter);
# - the teacher's detections, calibrated on its detection scores, as soft targets at the priors
#   RetinaNet's own MaxIoUAssigner gives them (class: the calibrated score; box: the teacher's).
#   python tools/train.py configs/hetero/pkd-pred-cal_retinanet_r50_gfl-r101_1x_coco.py
_base_ = 'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['mmkdcal'], allow_failed_imports=False)

# MMDetection model zoo, configs/gfl/metafile.yml, gfl_r101_fpn_ms-2x_coco (box AP 44.7)
teacher_ckpt = 'https://download.openmmlab.com/mmdetection/v2.0/gfl/gfl_r101_fpn_mstrain_2x_coco/gfl_r101_fpn_mstrain_2x_coco_20200629_200126-dd12f847.pth'  # noqa: E501

model = dict(
    type='DistillRetinaNet',
    teacher_config='mmdet::gfl/gfl_r101_fpn_ms-2x_coco.py',
    teacher_ckpt=teacher_ckpt,
    teacher_temperature=None,  # fitted on the teacher's detections by the hook below
    distill_losses=dict(
        loss_pkd=dict(type='PKDLoss', inputs='neck', loss_weight=6.0),
        loss_pred_cls=dict(type='BinaryKDLoss', inputs='pred_cls', beta=2.0, loss_weight=1.0),
        loss_pred_box=dict(type='BoxKDLoss', inputs='pred_box', l1_weight=0.0,
                           giou_weight=1.0, loss_weight=1.0)))
custom_hooks = [dict(type='TeacherCalibrationHook', objective='nll', fit_on='detections')]

# Checkpoints: atomic saves (a killed or disk-full save keeps the previous checkpoint).
default_hooks = dict(checkpoint=dict(type='AtomicCheckpointHook'))
