# Binary (per-class sigmoid) KD from an *uncalibrated* teacher: FCOS R-101 (caffe, ms-2x) ->
# FCOS R-50 (caffe, 1x) on COCO. The baseline of kd-cal_fcos_r50-caffe_r101-caffe_1x_coco.py,
# which differs only in the teacher's calibration temperature (fitted there, 1.0 here).
#   python tools/train.py configs/fcos/kd_fcos_r50-caffe_r101-caffe_1x_coco.py
# The teacher runs on the student's preprocessed batch, so both must normalise alike: this pair
# of model-zoo FCOS configs both use caffe-style BGR input (mean [102.9801, 115.9465, 122.7717],
# std 1, bgr_to_rgb=False) and the same GN head (strides 8-128, no center-sampling/norm-on-bbox
# variants); the distiller checks the normalisation when it is built.
_base_ = 'mmdet::fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py'
custom_imports = dict(imports=['mmkdcal'], allow_failed_imports=False)

# Teacher weights: MMDetection model zoo, configs/fcos/metafile.yml,
# fcos_r101-caffe_fpn_gn-head_ms-640-800-2x_coco (box AP 40.8). Use a local copy with
# --cfg-options model.teacher_ckpt=/path/to/teacher.pth
teacher_ckpt = 'https://download.openmmlab.com/mmdetection/v2.0/fcos/fcos_r101_caffe_fpn_gn-head_mstrain_640-800_2x_coco/fcos_r101_caffe_fpn_gn-head_mstrain_640-800_2x_coco-511424d6.pth'  # noqa: E501

model = dict(
    type='DistillFCOS',
    teacher_config='mmdet::fcos/fcos_r101-caffe_fpn_gn-head_ms-640-800-2x_coco.py',
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
