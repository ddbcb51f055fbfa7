# A dense teacher of another family for an RTMDet student: TOOD R-101 (DCN, ms-2x, box AP 49.3)
# -> RTMDet-S (300e, box AP 44.5) on COCO (docs/heterogeneous.md). RTMDet assigns on its own
# predictions (DynamicSoftLabelAssigner), so the teacher's calibrated detections are its soft
# targets through that assigner, run by RTMDet's own loss on the student's detached outputs.
# - PKD on the neck levels paired by stride: the student's 8-32 against the teacher's 8-128, three
#   pairs; the student's 128-wide levels are mapped to the teacher's 256 by a 1x1 adapter (trained
#   with the student, saved apart from its weights);
# - the teacher's detections, calibrated on its detection scores, as soft class targets
#   (quality focal form) and box targets at the priors the assigner gives them.
# The teacher runs on the student's batch: RTMDet normalises BGR images and TOOD RGB ones (the
# same mean and std per colour), so the student takes the teacher's channel order
# (data_preprocessor below). Its checkpoints load strictly into the stock RTMDet-S config, but
# are evaluated with this data_preprocessor.
#   python tools/train.py configs/hetero/pkd-pred-cal_rtmdet_s_tood-r101-dconv_300e_coco.py
_base_ = 'mmdet::rtmdet/rtmdet_s_8xb32-300e_coco.py'
custom_imports = dict(imports=['mmkdcal'], allow_failed_imports=False)

# MMDetection model zoo, configs/tood/metafile.yml, tood_r101-dconv-c3-c5_fpn_ms-2x_coco
# (box AP 49.3)
teacher_ckpt = 'https://download.openmmlab.com/mmdetection/v2.0/tood/tood_r101_fpn_dconv_c3-c5_mstrain_2x_coco/tood_r101_fpn_dconv_c3-c5_mstrain_2x_coco_20211210_213728-4a824142.pth'  # noqa: E501

model = dict(
    type='DistillRTMDet',
    data_preprocessor=dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
                           bgr_to_rgb=True),  # TOOD's: RGB order
    teacher_config='mmdet::tood/tood_r101-dconv-c3-c5_fpn_ms-2x_coco.py',
    teacher_ckpt=teacher_ckpt,
    teacher_temperature=None,  # fitted on the teacher's detections by the hook below
    distill_losses=dict(
        loss_pkd=dict(type='PKDLoss', inputs='neck', student_channels=128, teacher_channels=256,
                      loss_weight=6.0),
        loss_pred_cls=dict(type='BinaryKDLoss', inputs='pred_cls', beta=2.0, loss_weight=1.0),
        loss_pred_box=dict(type='BoxKDLoss', inputs='pred_box', l1_weight=0.0,
                           giou_weight=1.0, loss_weight=1.0)))

custom_hooks = [
    # RTMDet's own hooks, as in its stock config: EMA of the student weights, and the switch to
    # the weaker augmentation pipeline for the last 20 epochs.
    dict(type='EMAHook', ema_type='ExpMomentumEMA', momentum=0.0002, update_buffers=True,
         priority=49),
    dict(type='PipelineSwitchHook', switch_epoch=280,
         switch_pipeline={{_base_.train_pipeline_stage2}}),
    # Distil during the mosaic stage only, as the same-family RTMDet configs (configs/rtmdet).
    dict(type='DistillStopHook', stop_epoch=280),
    dict(type='TeacherCalibrationHook', objective='nll', fit_on='detections'),
]

# Checkpoints: atomic saves (a killed or disk-full save keeps the previous checkpoint).
default_hooks = dict(checkpoint=dict(type='AtomicCheckpointHook'))
