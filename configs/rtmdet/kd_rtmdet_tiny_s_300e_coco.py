# Binary (per-class sigmoid) KD from an *uncalibrated* teacher: RTMDet-s -> RTMDet-tiny, COCO.
# The baseline of kd-cal_rtmdet_tiny_s_300e_coco.py, which differs only in the teacher's
# calibration temperature (fitted there, fixed to 1.0 here).
#   python tools/train.py configs/rtmdet/kd_rtmdet_tiny_s_300e_coco.py
# The student is the stock MMDetection config (CSPNeXt backbone, head, data, 300-epoch schedule
# with its EMA and pipeline switch, 8 GPUs x 32 images); only the model type, the teacher, the
# distillation losses and the distillation hooks are added.
_base_ = 'mmdet::rtmdet/rtmdet_tiny_8xb32-300e_coco.py'
custom_imports = dict(imports=['mmkdcal'], allow_failed_imports=False)

# Teacher weights: MMDetection model zoo, configs/rtmdet/metafile.yml, rtmdet_s_8xb32-300e_coco
# (box AP 44.5). Use a local copy with --cfg-options model.teacher_ckpt=/path/to/teacher.pth
teacher_ckpt = 'https://download.openmmlab.com/mmdetection/v3.0/rtmdet/rtmdet_s_8xb32-300e_coco/rtmdet_s_8xb32-300e_coco_20220905_161602-387a891e.pth'  # noqa: E501

model = dict(
    type='DistillRTMDet',  # an RTMDet: its own behaviour (SyncBN under DDP) is kept
    teacher_config='mmdet::rtmdet/rtmdet_s_8xb32-300e_coco.py',
    teacher_ckpt=teacher_ckpt,
    teacher_temperature=1.0,  # 1.0: distil from the uncalibrated teacher
    teacher_inference=dict(fuse_conv_bn=True, channels_last=False, precision='fp32'),
    distill_losses=dict(
        # Binary KD on the class logits (BCKD's classification distillation, Yang et al., ICCV
        # 2023, arXiv 2308.14286: BCE(s, sigmoid(t)) * |sigmoid(t) - sigmoid(s)|, weight 1.0).
        # RTMDet's score is the sigmoid of its class logit (QualityFocalLoss), so the logits are
        # distilled as logits and the calibration temperature divides them.
        loss_kd_cls=dict(
            type='BinaryKDLoss', inputs='cls', tau=1.0, beta=1.0, loss_weight=1.0)))

custom_hooks = [
    # RTMDet's own hooks, as in its stock config: EMA of the student weights, and the switch to
    # the weaker augmentation pipeline for the last 20 epochs.
    dict(
        type='EMAHook',
        ema_type='ExpMomentumEMA',
        momentum=0.0002,
        update_buffers=True,
        priority=49),
    dict(
        type='PipelineSwitchHook',
        switch_epoch=280,
        switch_pipeline={{_base_.train_pipeline_stage2}}),
    # Distil during the mosaic stage only; the student fine-tunes on its task losses alone for
    # the last 20 epochs (as MMYOLO's RTMDet distillation, DistillationLossDetachHook at 280).
    dict(type='DistillStopHook', stop_epoch=280),
    # Fits the teacher's temperature when model.teacher_temperature is None (the kd-cal configs:
    # NLL of the teacher's detections on the calibration set, COCO val2017); with a temperature
    # in the config (1.0 here) it fits nothing. Either way it keeps the distillation state (the
    # temperature, feature adapters) with the run.
    dict(type='TeacherCalibrationHook', objective='nll', fit_on='detections'),
]

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
