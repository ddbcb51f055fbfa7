# KD from a *calibrated* teacher: identical to kd_faster-rcnn_r18_r101_1x_coco.py except that
# TeacherCalibrationHook fits the teacher's RoI-logit temperature before training (see
# kd-cal_faster-rcnn_r50_r101_1x_coco.py).
#   python tools/train.py configs/faster_rcnn/kd-cal_faster-rcnn_r18_r101_1x_coco.py
_base_ = './kd_faster-rcnn_r18_r101_1x_coco.py'

model = dict(teacher_temperature=None)  # None: fitted by TeacherCalibrationHook
custom_hooks = [dict(type='TeacherCalibrationHook', objective='nll', fit_on='rois')]
