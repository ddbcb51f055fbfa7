# Mask R-CNN KD on DigitsDet from the *calibrated* teacher: TeacherCalibrationHook fits the
# teacher's temperature before training on its RoI head's softmax logits of RoIs sampled from its
# own proposals on the held-out calib split, against their assigned labels (fit_on='rois', NLL):
# the quantity 'roi_cls' distils. Everything else is
# configs/demo/kd_mask-rcnn_r18w16_r18w32_digits.py.
#   python tools/train.py configs/demo/kd-cal_mask-rcnn_r18w16_r18w32_digits.py
_base_ = ['./kd_mask-rcnn_r18w16_r18w32_digits.py']

model = dict(teacher_temperature=None)
custom_hooks = [
    dict(type='TeacherCalibrationHook', dataloader={{_base_.calib_dataloader}},
         objective='nll', fit_on='rois'),
]
