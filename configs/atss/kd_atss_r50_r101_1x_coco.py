# Binary (per-class sigmoid) KD from an *uncalibrated* teacher: ATSS R-101 (1x) -> ATSS R-50 (1x)
# on COCO. The baseline of kd-cal_atss_r50_r101_1x_coco.py, which differs only in the teacher's
# calibration temperature (fitted there, fixed to 1.0 here).
#   python tools/train.py configs/atss/kd_atss_r50_r101_1x_coco.py
# The student is the stock MMDetection config; teacher and student share the head layout (one
# anchor per location, strides 8-128, GN head) and the ImageNet RGB normalisation.
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
    distill_losses=dict(
        # Classification KD of BCKD (Yang et al., ICCV 2023, arXiv 2308.14286; official code:
        # BCE(s, sigmoid(t)) * |sigmoid(t) - sigmoid(s)|^1 over all locations and classes, no
        # softening temperature, loss_weight 1.0, divided by the number of positives). Here the
        # divisor is the teacher's soft foreground count, of the same order. The distiller
        # compares the logits of the fused detection score, sigmoid(cls) * sigmoid(centerness).
        loss_kd_cls=dict(
            type='BinaryKDLoss', inputs='cls', tau=1.0, beta=1.0, loss_weight=1.0)))

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
