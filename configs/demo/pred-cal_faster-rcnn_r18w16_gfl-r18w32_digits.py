# Prediction KD on DigitsDet from the *calibrated* teacher: TeacherCalibrationHook, before training,
# fits the teacher's temperature on its detections of the held-out calib split (NLL, matched at IoU
# 0.5; fit_on='detections'), and the soft targets at the student's RoIs are the calibrated scores.
# Everything else is configs/demo/pred_faster-rcnn_r18w16_gfl-r18w32_digits.py.
#   python tools/train.py configs/demo/pred-cal_faster-rcnn_r18w16_gfl-r18w32_digits.py
_base_ = ['./pred_faster-rcnn_r18w16_gfl-r18w32_digits.py']

model = dict(teacher_temperature=None)
custom_hooks = [
    dict(type='TeacherCalibrationHook', dataloader={{_base_.calib_dataloader}},
         objective='nll', fit_on='detections'),
]
