# kd from a *calibrated* teacher (Kim et al., "The Role of Teacher Calibration in
# Knowledge Distillation", IEEE Access 2025, arXiv 2508.20224): identical to
# kd_rtmdet_s_m_300e_coco.py except that, before the first iteration,
# TeacherCalibrationHook fits the teacher's temperature T by minimising the NLL of its detections
# on COCO val2017 (an RTMDet detection's score is sigmoid(class logit); each detection is matched
# or not to a ground-truth box at IoU 0.5), and binary KD then sees the teacher's class logits
# divided by T.
#   python tools/train.py configs/rtmdet/kd-cal_rtmdet_s_m_300e_coco.py
_base_ = './kd_rtmdet_s_m_300e_coco.py'

model = dict(teacher_temperature=None)  # None: fitted by TeacherCalibrationHook
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
    dict(type='TeacherCalibrationHook', objective='nll', fit_on='detections'),
]
