# Cascade R-CNN KD on DigitsDet from the *calibrated* teacher: TeacherCalibrationHook fits the
# teacher's temperature before training on its first stage's (K+1)-way RoI softmax over RoIs
# sampled from the RPN proposals of the held-out calib split (NLL against their assigned labels;
# fit_on='rois', the quantity the RoI KD distils); the one T then divides every stage's teacher
# RoI logits. Everything else is configs/demo/kd_cascade-rcnn_r18w16_r18w32_digits.py.
#   python tools/train.py configs/demo/kd-cal_cascade-rcnn_r18w16_r18w32_digits.py
_base_ = ['./kd_cascade-rcnn_r18w16_r18w32_digits.py']

model = dict(teacher_temperature=None)
custom_hooks = [
    dict(type='TeacherCalibrationHook', dataloader={{_base_.calib_dataloader}},
         objective='nll', fit_on='rois'),
]
