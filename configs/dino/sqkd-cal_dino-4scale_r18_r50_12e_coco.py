# KD from a *calibrated* teacher (Kim et al., "The Role of Teacher Calibration in Knowledge
# Distillation", IEEE Access 2025, arXiv 2508.20224): identical to
# sqkd_dino-4scale_r18_r50_12e_coco.py except that, before the first iteration,
# TeacherCalibrationHook fits the teacher's temperature T by minimising the NLL of its detections on
# COCO val2017 (a DINO-4scale detection's score is sigmoid(one query's class logit), matched or not
# to a ground-truth box at IoU 0.5), and every distillation loss then sees the teacher's class
# logits of every decoder layer divided by T.
#   python tools/train.py configs/dino/sqkd-cal_dino-4scale_r18_r50_12e_coco.py
_base_ = './sqkd_dino-4scale_r18_r50_12e_coco.py'

model = dict(teacher_temperature=None)  # None: fitted by TeacherCalibrationHook
custom_hooks = [dict(type='TeacherCalibrationHook', objective='nll', fit_on='detections')]
