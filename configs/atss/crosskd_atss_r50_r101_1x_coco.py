# CrossKD from an *uncalibrated* teacher: ATSS R-101 (1x) -> ATSS R-50 (1x) on COCO, the setting
# of CrossKD's published ATSS result (39.4 -> 41.8 box AP). The baseline of
# crosskd-cal_atss_r50_r101_1x_coco.py, which differs only in the teacher's calibration
# temperature (fitted there, fixed to 1.0 here).
#   python tools/train.py configs/atss/crosskd_atss_r50_r101_1x_coco.py
# CrossKD (Wang et al., CVPR 2024, arXiv 2306.11369): the student's head features after 3 of its
# 4 tower convs go through the teacher's last tower conv and output layers, and the crossed
# predictions mimic the teacher's own; the student's own head trains on the ground truth only.
_base_ = 'mmdet::atss/atss_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['mmkdcal'], allow_failed_imports=False)

# Teacher weights: MMDetection model zoo, configs/atss/metafile.yml, atss_r101_fpn_1x_coco
# (box AP 41.5). Use a local copy with --cfg-options model.teacher_ckpt=/path/to/teacher.pth
teacher_ckpt = 'https://download.openmmlab.com/mmdetection/v2.0/atss/atss_r101_fpn_1x_coco/atss_r101_fpn_1x_20200825-dfcadd6f.pth'  # noqa: E501

model = dict(
    type='DistillATSS',
    teacher_config='mmdet::atss/atss_r101_fpn_1x_coco.py',
    teacher_ckpt=teacher_ckpt,
    teacher_temperature=1.0,  # 1.0: distil from the uncalibrated teacher
    teacher_inference=dict(fuse_conv_bn=True, channels_last=False, precision='fp32'),
    # CrossKD's reused_teacher_head_idx=3: the first 3 tower convs are the student's.
    crosskd=dict(layer=3),
    distill_losses=dict(
        # CrossKD's classification term (KDQualityFocalLoss, beta 1, weight 1.0) on the logits
        # of the fused score sigmoid(cls) * sigmoid(centerness), which also covers CrossKD's
        # separate centerness term.
        loss_kd_xcls=dict(
            type='BinaryKDLoss', inputs='crosskd_cls', tau=1.0, beta=1.0, loss_weight=1.0),
        # CrossKD compares the decoded crossed boxes with GIoU (weight 1.0); ATSS's 'reg' output
        # is the box deltas, so this config compares the deltas with L1 (weight 1.0).
        loss_kd_xreg=dict(type='BoxKDLoss', inputs='crosskd_reg', l1_weight=1.0,
                          giou_weight=0.0, loss_weight=1.0)))

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
