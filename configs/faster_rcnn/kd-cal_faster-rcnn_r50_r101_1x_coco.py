# KD from a *calibrated* teacher (Kim et al., "The Role of Teacher Calibration in Knowledge
# Distillation", IEEE Access 2025, arXiv 2508.20224): identical to
# kd_faster-rcnn_r50_r101_1x_coco.py except that, before the first iteration,
# TeacherCalibrationHook fits the teacher's temperature T by minimising the softmax NLL of its
# RoI head on sampled RoIs of the calibration set (fit_on='rois': the same kind of (K+1)-way
# logits, against their assigned labels, that the RoI KD loss distils), and the KD loss then
# sees the teacher's RoI logits divided by T.
#   python tools/train.py configs/faster_rcnn/kd-cal_faster-rcnn_r50_r101_1x_coco.py
_base_ = './kd_faster-rcnn_r50_r101_1x_coco.py'

model = dict(teacher_temperature=None)  # None: fitted by TeacherCalibrationHook
custom_hooks = [dict(type='TeacherCalibrationHook', objective='nll', fit_on='rois')]
