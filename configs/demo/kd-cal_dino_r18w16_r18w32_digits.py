# DETR-family KD on DigitsDet from the *calibrated* teacher: TeacherCalibrationHook runs the
# teacher once over the held-out calib split before training, fits a temperature T on its
# detections (NLL of sigmoid(class logit / T), each detection matched or not to a ground-truth box
# at IoU 0.5; DINO's detection score is the sigmoid of a query's class logit, so T acts on the
# very logits that KD distils), and the teacher's class logits of every decoder layer are divided
# by T in every KD step. Everything else is configs/demo/kd_dino_r18w16_r18w32_digits.py.
#   python tools/train.py configs/demo/kd-cal_dino_r18w16_r18w32_digits.py
_base_ = ['./kd_dino_r18w16_r18w32_digits.py']

model = dict(teacher_temperature=None)
custom_hooks = [
    dict(type='TeacherCalibrationHook', dataloader={{_base_.calib_dataloader}},
         objective='nll', fit_on='detections'),
]
