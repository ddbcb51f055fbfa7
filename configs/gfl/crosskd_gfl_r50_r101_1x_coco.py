# CrossKD from an *uncalibrated* teacher: GFL R-101 (ms-2x) -> GFL R-50 (1x) on COCO, the setting
# of CrossKD's published GFL result (40.2 -> 43.7 box AP). The baseline of
# crosskd-cal_gfl_r50_r101_1x_coco.py, which differs only in the teacher's calibration
# temperature (fitted there, fixed to 1.0 here).
#   python tools/train.py configs/gfl/crosskd_gfl_r50_r101_1x_coco.py
# CrossKD (Wang et al., "CrossKD: Cross-Head Knowledge Distillation for Object Detection",
# CVPR 2024, arXiv 2306.11369): the student's head features after 3 of its 4 tower convs go
# through the teacher's last tower conv and output layers (gradients flow to the student), and
# the crossed predictions mimic the teacher's own. The student's own head is trained on the
# ground truth only, as stock.
_base_ = 'mmdet::gfl/gfl_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['mmkdcal'], allow_failed_imports=False)

# Teacher weights: MMDetection model zoo, configs/gfl/metafile.yml, gfl_r101_fpn_ms-2x_coco
# (box AP 44.7). Use a local copy with --cfg-options model.teacher_ckpt=/path/to/teacher.pth
teacher_ckpt = 'https://download.openmmlab.com/mmdetection/v2.0/gfl/gfl_r101_fpn_mstrain_2x_coco/gfl_r101_fpn_mstrain_2x_coco_20200629_200126-dd12f847.pth'  # noqa: E501

model = dict(
    type='DistillGFL',
    teacher_config='mmdet::gfl/gfl_r101_fpn_ms-2x_coco.py',
    teacher_ckpt=teacher_ckpt,
    teacher_temperature=1.0,  # 1.0: distil from the uncalibrated teacher
    teacher_inference=dict(fuse_conv_bn=True, channels_last=False, precision='fp32'),
    # CrossKD's reused_teacher_head_idx=3: the first 3 tower convs are the student's.
    crosskd=dict(layer=3),
    distill_losses=dict(
        # CrossKD's classification term (its KDQualityFocalLoss, beta 1, weight 1.0):
        # BCE(crossed, sigmoid(t)) * |sigmoid(t) - sigmoid(crossed)| over all locations and
        # classes. CrossKD divides by the number of positives; here by the teacher's soft
        # foreground count, of the same order.
        loss_kd_xcls=dict(
            type='BinaryKDLoss', inputs='crosskd_cls', tau=1.0, beta=1.0, loss_weight=1.0),
        # CrossKD's box-distribution term (KL divergence of the general distributions, T 1,
        # weight 3.0). CrossKD also adds a GIoU term on the decoded crossed boxes (weight 2.0),
        # which this config leaves out: GFL's 'reg' output is the distribution, not a box.
        loss_kd_xreg=dict(type='LDLoss', inputs='crosskd_reg', tau=1.0, loss_weight=3.0)))

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
