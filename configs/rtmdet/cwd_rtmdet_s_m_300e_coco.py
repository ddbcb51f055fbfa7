# Channel-wise neck KD alone (no logit KD) from RTMDet-m -> RTMDet-s, COCO: MMYOLO's RTMDet
# distillation recipe, the peer row of the README (kd-cwd_rtmdet_s_m_300e_coco.py without
# its binary KD). Feature KD does not read the teacher's class logits, so a calibrated twin
# would be the same run; the calibrated variant is kd-cal-cwd.
#   python tools/train.py configs/rtmdet/cwd_rtmdet_s_m_300e_coco.py
_base_ = './kd-cwd_rtmdet_s_m_300e_coco.py'

model = dict(
    distill_losses=dict(
        _delete_=True, loss_kd_neck={{_base_.model.distill_losses.loss_kd_neck}}))
