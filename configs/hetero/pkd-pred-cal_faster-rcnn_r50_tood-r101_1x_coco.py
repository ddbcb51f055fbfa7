# A dense teacher for a two-stage student: TOOD R-101 (ms-2x, box AP 46.1) -> Faster R-CNN R-50
# (1x, box AP 37.4) on COCO (docs/heterogeneous.md, "RoI students"). The student's sampled RoIs
# are assigned to the teacher's calibrated detections by its own rcnn assigner (MaxIoUAssigner):
# - PKD on the FPN levels of equal stride (the student's 4-64 against the teacher's 8-128: four
#   pairs, 8-64; both 256 wide: no adapter);
# - RoI class KD: the (K + 1)-way soft target (the detection's calibrated score on its class, the
#   rest on the background), KDLoss with tau=1 so that the calibrated score is not flattened;
# - RoI box KD: the student's decoded box at each RoI against its detection, GIoU.
#   python tools/train.py configs/hetero/pkd-pred-cal_faster-rcnn_r50_tood-r101_1x_coco.py
_base_ = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['mmkdcal'], allow_failed_imports=False)

# MMDetection model zoo, configs/tood/metafile.yml, tood_r101_fpn_ms-2x_coco (box AP 46.1)
teacher_ckpt = 'https://download.openmmlab.com/mmdetection/v2.0/tood/tood_r101_fpn_mstrain_2x_coco/tood_r101_fpn_mstrain_2x_coco_20211210_144232-a18f53c8.pth'  # noqa: E501

model = dict(
    type='DistillFasterRCNN',
    teacher_config='mmdet::tood/tood_r101_fpn_ms-2x_coco.py',
    teacher_ckpt=teacher_ckpt,
    teacher_temperature=None,  # fitted on the teacher's detections by the hook below
    distill_losses=dict(
        loss_pkd=dict(type='PKDLoss', inputs='neck', loss_weight=6.0),
        loss_pred_cls=dict(type='KDLoss', inputs='roi_pred_cls', tau=1.0, loss_weight=1.0),
        loss_pred_box=dict(type='BoxKDLoss', inputs='roi_pred_box', l1_weight=0.0,
                           giou_weight=1.0, loss_weight=1.0)))
custom_hooks = [dict(type='TeacherCalibrationHook', objective='nll', fit_on='detections')]

# Checkpoints: atomic saves (a killed or disk-full save keeps the previous checkpoint).
default_hooks = dict(checkpoint=dict(type='AtomicCheckpointHook'))
