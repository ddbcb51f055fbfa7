# CrossKD for GFL on DigitsDet from the *calibrated* teacher: TeacherCalibrationHook fits the
# teacher's temperature on its detections of the held-out calib split (NLL, matched at IoU 0.5)
# before training, and the teacher's class logits the crossed outputs are compared with are
# divided by it. Everything else is configs/demo/crosskd_gfl_r18w16-h64_r18w32_digits.py.
#   python tools/train.py configs/demo/crosskd-cal_gfl_r18w16-h64_r18w32_digits.py
_base_ = ['./crosskd_gfl_r18w16-h64_r18w32_digits.py']

model = dict(teacher_temperature=None)
custom_hooks = [
    dict(type='TeacherCalibrationHook', dataloader={{_base_.calib_dataloader}},
         objective='nll', fit_on='detections'),
]
