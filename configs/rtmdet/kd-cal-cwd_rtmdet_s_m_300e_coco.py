# kd-cwd from a *calibrated* teacher (Kim et al., "The Role of Teacher Calibration in
# Knowledge Distillation", IEEE Access 2025, arXiv 2508.20224): kd-cwd_rtmdet_s_m_300e_coco.py
# with model.teacher_temperature=None, so that its TeacherCalibrationHook fits the teacher's
# temperature T before the first iteration (NLL of the teacher's detections on COCO val2017: an
# RTMDet detection's score is sigmoid(class logit), matched or not to a ground-truth box at IoU
# 0.5), and binary KD then sees the teacher's class logits divided by T.
#   python tools/train.py configs/rtmdet/kd-cal-cwd_rtmdet_s_m_300e_coco.py
_base_ = './kd-cwd_rtmdet_s_m_300e_coco.py'

model = dict(teacher_temperature=None)  # None: fitted by TeacherCalibrationHook
