# KD from a *calibrated* teacher (Kim et al., "The Role of Teacher Calibration in Knowledge
# Distillation", IEEE Access 2025, arXiv 2508.20224): identical to
# kd_retinanet_r50_r101_1x_coco.py except that, before the first iteration,
# TeacherCalibrationHook fits the teacher's temperature T by minimising the NLL of its
# detections on the calibration set (RetinaNet's score is sigmoid(class logit), so T fitted on
# the scores is T of the logits), and the KD loss then sees the teacher's logits divided by T.
#   python tools/train.py configs/retinanet/kd-cal_retinanet_r50_r101_1x_coco.py
_base_ = './kd_retinanet_r50_r101_1x_coco.py'

model = dict(teacher_temperature=None)  # None: fitted by TeacherCalibrationHook
custom_hooks = [dict(type='TeacherCalibrationHook', objective='nll', fit_on='detections')]
