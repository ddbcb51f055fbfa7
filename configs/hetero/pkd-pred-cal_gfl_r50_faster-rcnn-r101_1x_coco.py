# A two-stage teacher for a dense student: Faster R-CNN R-101 (ms-3x) -> GFL R-50 (1x) on COCO
# (docs/heterogeneous.md). PKD on the FPN levels of equal stride (the teacher's 4-64 against the
# student's 8-128: four pairs), and the teacher's calibrated detections as soft targets through
# GFL's own ATSSAssigner.
#   python tools/train.py configs/hetero/pkd-pred-cal_gfl_r50_faster-rcnn-r101_1x_coco.py
_base_ = 'mmdet::gfl/gfl_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['mmkdcal'], allow_failed_imports=False)

# MMDetection model zoo, configs/faster_rcnn/metafile.yml, faster-rcnn_r101_fpn_ms-3x_coco
teacher_ckpt = 'https://download.openmmlab.com/mmdetection/v2.0/faster_rcnn/faster_rcnn_r101_fpn_mstrain_3x_coco/faster_rcnn_r101_fpn_mstrain_3x_coco_20210524_110822-4d4d2ca8.pth'  # noqa: E501

model = dict(
    type='DistillGFL',
    teacher_config='mmdet::faster_rcnn/faster-rcnn_r101_fpn_ms-3x_coco.py',
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
