# KD from a *calibrated* teacher (Kim et al., "The Role of Teacher Calibration in Knowledge
# Distillation", IEEE Access 2025, arXiv 2508.20224): identical to kd_gfl_r50_r101_1x_coco.py
# except that, before the first iteration, TeacherCalibrationHook fits the teacher's
# temperature T by minimising the NLL of its detections (each COCO val2017 detection's score is
# sigmoid(class logit) for GFL, matched or not to a ground-truth box at IoU 0.5), and every
# distillation loss then sees the teacher's class logits divided by T.
#   python tools/train.py configs/gfl/kd-cal_gfl_r50_r101_1x_coco.py
_base_ = './kd_gfl_r50_r101_1x_coco.py'

model = dict(teacher_temperature=None)  # None: fitted by TeacherCalibrationHook
custom_hooks = [dict(type='TeacherCalibrationHook', objective='nll', fit_on='detections')]
