# Binary KD + LD (as ld_gfl_r50_r101_1x_coco.py) from a *calibrated* teacher: the teacher's
# temperature is fitted by TeacherCalibrationHook before training (see
# kd-cal_gfl_r50_r101_1x_coco.py) and divides the teacher's class logits (used by the binary
# KD term and by nothing else: LD's box distributions are not temperature-scaled, and LD's
# per-location weight is the uncalibrated teacher's max class probability).
#   python tools/train.py configs/gfl/ld-cal_gfl_r50_r101_1x_coco.py
_base_ = './ld_gfl_r50_r101_1x_coco.py'

model = dict(teacher_temperature=None)  # None: fitted by TeacherCalibrationHook
custom_hooks = [dict(type='TeacherCalibrationHook', objective='nll', fit_on='detections')]
