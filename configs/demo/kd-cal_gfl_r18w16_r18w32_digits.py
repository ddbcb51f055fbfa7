# KD on DigitsDet from the *calibrated* teacher: TeacherCalibrationHook runs the teacher once over
# the held-out calib split before training, fits a temperature T on its detections (NLL, matched
# at IoU 0.5), and the teacher's class logits are divided by T in every KD step. Everything else is
# identical to configs/demo/kd_gfl_r18w16_r18w32_digits.py.
#   python tools/train.py configs/demo/kd-cal_gfl_r18w16_r18w32_digits.py
_base_ = ['./kd_gfl_r18w16_r18w32_digits.py']

model = dict(teacher_temperature=None)
custom_hooks = [
    dict(type='TeacherCalibrationHook', dataloader={{_base_.calib_dataloader}},
         objective='nll', fit_on='detections'),
]
