# RTMDet KD on DigitsDet from the *calibrated* teacher: TeacherCalibrationHook fits the teacher's
# temperature on its detections of the held-out calib split (NLL, matched at IoU 0.5) before
# training. Everything else is configs/demo/kd_rtmdet_cspnext-w16_cspnext-w32_digits.py.
#   python tools/train.py configs/demo/kd-cal_rtmdet_cspnext-w16_cspnext-w32_digits.py
_base_ = ['./kd_rtmdet_cspnext-w16_cspnext-w32_digits.py']

model = dict(teacher_temperature=None)
custom_hooks = [
    dict(type='TeacherCalibrationHook', dataloader={{_base_.calib_dataloader}},
         objective='nll', fit_on='detections'),
]
