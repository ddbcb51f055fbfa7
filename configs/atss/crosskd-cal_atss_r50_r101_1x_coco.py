# CrossKD from a *calibrated* teacher (Kim et al., IEEE Access 2025, arXiv 2508.20224): identical
# to crosskd_atss_r50_r101_1x_coco.py except that, before the first iteration,
# TeacherCalibrationHook fits the teacher's temperature T by minimising the NLL of its detections
# on COCO val2017 (ATSS's score is sigmoid(cls) * sigmoid(centerness): T is fitted on, and
# divides, the logit of that fused score), and the crossed class logits then mimic the
# teacher's divided by T.
#   python tools/train.py configs/atss/crosskd-cal_atss_r50_r101_1x_coco.py
_base_ = './crosskd_atss_r50_r101_1x_coco.py'

model = dict(teacher_temperature=None)  # None: fitted by TeacherCalibrationHook
custom_hooks = [dict(type='TeacherCalibrationHook', objective='nll', fit_on='detections')]
