# RoI-level softmax KD from an *uncalibrated* teacher: Faster R-CNN R-101 (ms-3x) -> Faster R-CNN
# R-50 (1x) on COCO. The baseline of kd-cal_faster-rcnn_r50_r101_1x_coco.py, which differs only
# in the teacher's calibration temperature (fitted there, fixed to 1.0 here).
#   python tools/train.py configs/faster_rcnn/kd_faster-rcnn_r50_r101_1x_coco.py
# As in mdistiller's detection KD, the teacher's RoI head classifies the student's sampled RoIs
# (on the teacher's own FPN features), and the student's (K+1)-way RoI logits are distilled
# towards the teacher's.
_base_ = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['mmkdcal'], allow_failed_imports=False)

# Teacher weights: MMDetection model zoo, configs/faster_rcnn/metafile.yml,
# faster-rcnn_r101_fpn_ms-3x_coco (box AP 41.8; mdistiller's detection teacher is likewise a 3x
# R-101 Faster R-CNN). Use a local copy with --cfg-options model.teacher_ckpt=/path/to/teacher.pth
teacher_ckpt = 'https://download.openmmlab.com/mmdetection/v2.0/faster_rcnn/faster_rcnn_r101_fpn_mstrain_3x_coco/faster_rcnn_r101_fpn_mstrain_3x_coco_20210524_110822-4d4d2ca8.pth'  # noqa: E501

model = dict(
    type='DistillFasterRCNN',
    teacher_config='mmdet::faster_rcnn/faster-rcnn_r101_fpn_ms-3x_coco.py',
    teacher_ckpt=teacher_ckpt,
    teacher_temperature=1.0,  # 1.0: distil from the uncalibrated teacher
    teacher_inference=dict(fuse_conv_bn=True, channels_last=False, precision='fp32'),
    distill_losses=dict(
        # Hinton KD on the sampled RoIs' K+1 softmax logits, averaged over RoIs. tau 1.0 and
        # weight 1.0 follow mdistiller's RoI-level detection distillation (detection/model/
        # config.py: DKD T=1.0 with O(1) weights, loss averaged over the sampled RoIs), since
        # RoI softmax outputs are much less peaked than image-classification ones.
        loss_kd_roi=dict(type='KDLoss', inputs='roi_cls', tau=1.0, loss_weight=1.0)))

# Validation reports the student's COCO bbox mAP and its detection calibration error (D-ECE of the
# detections scoring >= 0.3, matched at IoU 0.5).
val_evaluator = [
    {{_base_.val_evaluator}},
    dict(type='DetectionCalibrationMetric', score_thr=0.3, iou_thr=0.5),
]
test_evaluator = val_evaluator

# Checkpoints: MMDetection's CheckpointHook with atomic saves (mmkdcal's AtomicCheckpointHook: a
# killed or disk-full save keeps the previous checkpoint); the other settings stay the base's.
default_hooks = dict(checkpoint=dict(type='AtomicCheckpointHook'))
