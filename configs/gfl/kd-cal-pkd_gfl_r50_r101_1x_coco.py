# Binary KD + PKD (as kd-pkd_gfl_r50_r101_1x_coco.py) from a *calibrated* teacher: the teacher's
# temperature is fitted by TeacherCalibrationHook before training (see
# kd-cal_gfl_r50_r101_1x_coco.py). The temperature scales the class logits only; PKD's FPN
# features are not affected by it.
#   python tools/train.py configs/gfl/kd-cal-pkd_gfl_r50_r101_1x_coco.py
_base_ = './kd-pkd_gfl_r50_r101_1x_coco.py'

model = dict(teacher_temperature=None)  # None: fitted by TeacherCalibrationHook
custom_hooks = [dict(type='TeacherCalibrationHook', objective='nll', fit_on='detections')]
