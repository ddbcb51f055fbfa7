# Channel-wise neck KD (no logit KD) from an *uncalibrated* teacher: RTMDet-s -> RTMDet-tiny, COCO.
# MMYOLO's RTMDet distillation recipe, the peer row of the README. Feature KD alone does
# not read the teacher's class logits, so a calibrated twin would be the same run; the
# calibrated variant is kd-cal-cwd.
#   python tools/train.py configs/rtmdet/cwd_rtmdet_tiny_s_300e_coco.py
# The student is the stock MMDetection config (CSPNeXt backbone, head, data, 300-epoch schedule
# with its EMA and pipeline switch, 8 GPUs x 32 images); only the model type, the teacher, the
# distillation losses and the hook that stops distillation at the pipeline switch are added.
_base_ = 'mmdet::rtmdet/rtmdet_tiny_8xb32-300e_coco.py'
custom_imports = dict(imports=['mmkdcal'], allow_failed_imports=False)

# Teacher weights: MMDetection model zoo, configs/rtmdet/metafile.yml, rtmdet_s_8xb32-300e_coco
# (box AP 44.5). Use a local copy with --cfg-options model.teacher_ckpt=/path/to/teacher.pth
teacher_ckpt = 'https://download.openmmlab.com/mmdetection/v3.0/rtmdet/rtmdet_s_8xb32-300e_coco/rtmdet_s_8xb32-300e_coco_20220905_161602-387a891e.pth'  # noqa: E501

model = dict(
    type='DistillSingleStageDetector',
    # The distiller is an RTMDet: it keeps RTMDet's own behaviour (its SyncBN switch under DDP).
    student_type='RTMDet',
    teacher_config='mmdet::rtmdet/rtmdet_s_8xb32-300e_coco.py',
    teacher_ckpt=teacher_ckpt,
    teacher_temperature=1.0,  # 1.0: distil from the uncalibrated teacher
    teacher_fp16=False,
    distill_losses=dict(
        # Channel-wise distillation (Shu et al., ICCV 2021, arXiv 2011.13256) on the 3 neck
        # outputs, each channel standardised over (N, H, W) first, tau 1, weight 1: MMYOLO's
        # RTMDet distillation (configs/rtmdet/distillation). The student's 96 channels are
        # mapped to the teacher's 128 by a learnable 1x1 adapter, trained with the student
        # and saved apart from its weights (a checkpoint loads strictly into the stock config).
        loss_kd_neck=dict(
            type='CWDLoss',
            inputs='neck',
            student_channels=96,
            teacher_channels=128,
            tau=1.0,
            standardise=True,
            loss_weight=1.0)))

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
    # Keeps the feature adapters' state with the run (saved apart from the student weights,
    # restored on resume); the temperature stays the config's 1.0, nothing is fitted.
    dict(type='TeacherCalibrationHook'),
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
