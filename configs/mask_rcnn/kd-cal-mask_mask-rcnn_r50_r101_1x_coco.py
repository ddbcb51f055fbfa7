# KD-MASK from a *calibrated* teacher (Kim et al., "The Role of Teacher Calibration in
# Knowledge Distillation", IEEE Access 2025, arXiv 2508.20224): identical to
# kd-mask_mask-rcnn_r50_r101_1x_coco.py except that, before the first iteration,
# TeacherCalibrationHook fits the teacher's temperature T by minimising the NLL of its RoI head's
# (K+1)-way softmax on sampled RoIs of the calibration set against their assigned labels
# (fit_on='rois': the quantity the RoI KD distils), on COCO val2017,
# and the RoI KD then sees the teacher's RoI logits divided by T.
#   python tools/train.py configs/mask_rcnn/kd-cal-mask_mask-rcnn_r50_r101_1x_coco.py
_base_ = './kd-mask_mask-rcnn_r50_r101_1x_coco.py'

model = dict(teacher_temperature=None)  # None: fitted by TeacherCalibrationHook
custom_hooks = [dict(type='TeacherCalibrationHook', objective='nll', fit_on='rois')]
