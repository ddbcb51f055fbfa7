# Binary (per-class sigmoid) KD from an *uncalibrated* teacher: GFL R-101 (ms-2x) -> GFL R-50 (1x)
# on COCO. The baseline of kd-cal_gfl_r50_r101_1x_coco.py, which differs only in the teacher's
# calibration temperature (fitted there, fixed to 1.0 here).
#   python tools/train.py configs/gfl/kd_gfl_r50_r101_1x_coco.py
# The student is the stock MMDetection config (backbone, head, data, 1x schedule, 8 GPUs x 2
# images); only the model type, the teacher and the distillation losses are added.
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
    distill_losses=dict(
        # Classification KD of BCKD (Yang et al., "Bridging Cross-task Protocol Inconsistency
        # for Distillation in Dense Object Detection", ICCV 2023, arXiv 2308.14286; official
        # code: BCE(s, sigmoid(t)) * |sigmoid(t) - sigmoid(s)|^1 over all locations and
        # classes, no softening temperature, loss_weight 1.0, divided by the number of
        # positives). Here the divisor is the teacher's soft foreground count, of the same order.
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
