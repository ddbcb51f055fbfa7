# KD from a *calibrated* teacher (Kim et al., "The Role of Teacher Calibration in Knowledge
# Distillation", IEEE Access 2025, arXiv 2508.20224): identical to
# sqkd_deformable-detr-refine-twostage_r18_r50_50e_coco.py except that, before the first iteration,
# TeacherCalibrationHook fits the teacher's temperature T by minimising the NLL of its detections on
# COCO val2017 (a Deformable DETR (box refinement, two-stage) detection's score is sigmoid(one
# query's class logit), matched or not to a ground-truth box at IoU 0.5), and every distillation
# loss then sees the teacher's class logits of every decoder layer divided by T.
#   python tools/train.py configs/deformable_detr/sqkd-cal_deformable-detr-refine-twostage_r18_r50_50e_coco.py  # noqa: E501
_base_ = './sqkd_deformable-detr-refine-twostage_r18_r50_50e_coco.py'

model = dict(teacher_temperature=None)  # None: fitted by TeacherCalibrationHook
custom_hooks = [dict(type='TeacherCalibrationHook', objective='nll', fit_on='detections')]
