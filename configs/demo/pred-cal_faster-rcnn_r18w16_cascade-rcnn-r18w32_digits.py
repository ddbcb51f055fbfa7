# Prediction KD on DigitsDet from the *calibrated* teacher: TeacherCalibrationHook, before training,
# fits the teacher's temperature on its first stage's RoI softmax over RoIs sampled from its RPN
# proposals of the held-out calib split (NLL; fit_on='rois'); T divides the chosen stage's logits.
# Everything else is configs/demo/pred_faster-rcnn_r18w16_cascade-rcnn-r18w32_digits.py.
#   python tools/train.py configs/demo/pred-cal_faster-rcnn_r18w16_cascade-rcnn-r18w32_digits.py
_base_ = ['./pred_faster-rcnn_r18w16_cascade-rcnn-r18w32_digits.py']

model = dict(teacher_temperature=None)
custom_hooks = [
    dict(type='TeacherCalibrationHook', dataloader={{_base_.calib_dataloader}},
         objective='nll', fit_on='rois'),
]
