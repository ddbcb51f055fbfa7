# KD from a *calibrated* teacher (Kim et al., "The Role of Teacher Calibration in Knowledge
# Distillation", IEEE Access 2025, arXiv 2508.20224): identical to kd_atss_r50_r101_1x_coco.py
# except that, before the first iteration, TeacherCalibrationHook fits the teacher's temperature
# T and the KD loss then sees the teacher's class logits divided by T.
# fit_on='detections': ATSS's detection score is sigmoid(class logit) * sigmoid(centerness);
# the KD loss compares the logits of that same fused score, so T is fitted on the teacher's
# detection scores (NLL, matched at IoU 0.5) and divides the quantity it was fitted on.
#   python tools/train.py configs/atss/kd-cal_atss_r50_r101_1x_coco.py
_base_ = './kd_atss_r50_r101_1x_coco.py'

model = dict(teacher_temperature=None)  # None: fitted by TeacherCalibrationHook
custom_hooks = [dict(type='TeacherCalibrationHook', objective='nll', fit_on='detections')]
