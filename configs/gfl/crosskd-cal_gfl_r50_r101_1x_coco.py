# CrossKD from a *calibrated* teacher (Kim et al., "The Role of Teacher Calibration in Knowledge
# Distillation", IEEE Access 2025, arXiv 2508.20224): identical to crosskd_gfl_r50_r101_1x_coco.py
# except that, before the first iteration, TeacherCalibrationHook fits the teacher's temperature T
# by minimising the NLL of its detections on COCO val2017, and the crossed class logits then
# mimic the teacher's class logits divided by T (a combination no published CrossKD run uses).
#   python tools/train.py configs/gfl/crosskd-cal_gfl_r50_r101_1x_coco.py
_base_ = './crosskd_gfl_r50_r101_1x_coco.py'

model = dict(teacher_temperature=None)  # None: fitted by TeacherCalibrationHook
custom_hooks = [dict(type='TeacherCalibrationHook', objective='nll', fit_on='detections')]
