# DKD (as dkd_faster-rcnn_r50_r101_1x_coco.py) from a *calibrated* teacher: the teacher's
# temperature is fitted on its RoI logits by TeacherCalibrationHook before training (see
# kd-cal_faster-rcnn_r50_r101_1x_coco.py).
#   python tools/train.py configs/faster_rcnn/dkd-cal_faster-rcnn_r50_r101_1x_coco.py
_base_ = './dkd_faster-rcnn_r50_r101_1x_coco.py'

model = dict(teacher_temperature=None)  # None: fitted by TeacherCalibrationHook
custom_hooks = [dict(type='TeacherCalibrationHook', objective='nll', fit_on='rois')]
