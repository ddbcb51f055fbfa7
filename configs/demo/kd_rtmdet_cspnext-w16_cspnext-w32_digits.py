# RTMDet KD on DigitsDet from the *uncalibrated* teacher (teacher_temperature=1.0): the control for
# configs/demo/kd-cal_rtmdet_cspnext-w16_cspnext-w32_digits.py. Student:
# configs/demo/rtmdet_cspnext-w16_digits.py, teacher: configs/demo/rtmdet_cspnext-w32_digits.py
# (train it first, or run `python tools/demo.py --family rtmdet`).
#   python tools/train.py configs/demo/kd_rtmdet_cspnext-w16_cspnext-w32_digits.py
_base_ = ['./rtmdet_cspnext-w16_digits.py']

teacher_config = 'configs/demo/rtmdet_cspnext-w32_digits.py'
# what `python tools/train.py configs/demo/rtmdet_cspnext-w32_digits.py` writes
teacher_ckpt = 'work_dirs/rtmdet_cspnext-w32_digits/iter_400.pth'
model = dict(
    type='DistillRTMDet',  # an RTMDet: its own behaviour (SyncBN under DDP) is kept
    teacher_config=teacher_config,
    teacher_ckpt=teacher_ckpt,
    teacher_temperature=1.0,
    # Per-class sigmoid KD on every location, weighted by |p_t - p_s| (BCKD, beta=1), as in the
    # GFL demo.
    distill_losses=dict(
        loss_kd=dict(type='BinaryKDLoss', inputs='cls', tau=1.0, beta=1.0, loss_weight=1.0)))
