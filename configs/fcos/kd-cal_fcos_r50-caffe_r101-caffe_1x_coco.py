# KD from a *calibrated* teacher (Kim et al., "The Role of Teacher Calibration in Knowledge
# Distillation", IEEE Access 2025, arXiv 2508.20224): identical to
# kd_fcos_r50-caffe_r101-caffe_1x_coco.py except that, before the first iteration,
# TeacherCalibrationHook fits the teacher's temperature T and the KD loss then sees the
# teacher's class logits divided by T.
# fit_on='anchors': FCOS's detection score is sigmoid(class logit) * sigmoid(centerness), so a
# temperature fitted on detection scores would be that of the fused score, not of the class
# logits that the KD loss uses. 'anchors' fits T on the class logits themselves (per-class
# sigmoid NLL against the teacher's own FCOS assignment, 4096 random locations per batch).
#   python tools/train.py configs/fcos/kd-cal_fcos_r50-caffe_r101-caffe_1x_coco.py
_base_ = './kd_fcos_r50-caffe_r101-caffe_1x_coco.py'

model = dict(teacher_temperature=None)  # None: fitted by TeacherCalibrationHook
custom_hooks = [dict(type='TeacherCalibrationHook', objective='nll', fit_on='anchors')]
