# Binary KD + channel-wise neck KD from an *uncalibrated* teacher: RTMDet-m -> RTMDet-s, COCO:
# kd_rtmdet_s_m_300e_coco.py plus MMYOLO's RTMDet feature distillation. The baseline of
# kd-cal-cwd_rtmdet_s_m_300e_coco.py.
#   python tools/train.py configs/rtmdet/kd-cwd_rtmdet_s_m_300e_coco.py
_base_ = './kd_rtmdet_s_m_300e_coco.py'

model = dict(
    distill_losses=dict(
        # Channel-wise distillation (Shu et al., ICCV 2021, arXiv 2011.13256) on the 3 neck
        # outputs, each channel standardised over (N, H, W) first, tau 1, weight 1: MMYOLO's
        # RTMDet distillation (configs/rtmdet/distillation). The student's 128 channels are
        # mapped to the teacher's 192 by a learnable 1x1 adapter, trained with the student
        # and saved apart from its weights (a checkpoint loads strictly into the stock config).
        loss_kd_neck=dict(
            type='CWDLoss',
            inputs='neck',
            student_channels=128,
            teacher_channels=192,
            tau=1.0,
            standardise=True,
            loss_weight=1.0)))
