# Cascade R-CNN KD on DigitsDet from the *calibrated* teacher: TeacherCalibrationHook fits the
# teacher's temperature on its final detections of the held-out calib split (NLL, matched at IoU
# 0.5) before training - fit_on='rois' needs a single-stage RoI assigner, so a cascade is
# calibrated on its detections. Everything else is
# configs/demo/kd_cascade-rcnn_r18w16_r18w32_digits.py.
#   python tools/train.py configs/demo/kd-cal_cascade-rcnn_r18w16_r18w32_digits.py
_base_ = ['./kd_cascade-rcnn_r18w16_r18w32_digits.py']

model = dict(teacher_temperature=None)
custom_hooks = [
    dict(type='TeacherCalibrationHook', dataloader={{_base_.calib_dataloader}},
         objective='nll', fit_on='detections'),
]
