# KD on DigitsDet from the *uncalibrated* teacher (teacher_temperature=1.0): the control for
# configs/demo/kd-cal_gfl_r18w16_r18w32_digits.py. Student: configs/demo/gfl_r18w16_digits.py,
# teacher: configs/demo/gfl_r18w32_digits.py (train it first, or run `python tools/demo.py`).
#   python tools/train.py configs/demo/kd_gfl_r18w16_r18w32_digits.py
_base_ = ['./gfl_r18w16_digits.py']

teacher_config = 'configs/demo/gfl_r18w32_digits.py'
# what `python tools/train.py configs/demo/gfl_r18w32_digits.py` writes (its max_iters = 400)
teacher_ckpt = 'work_dirs/gfl_r18w32_digits/iter_400.pth'
model = dict(
    type='DistillGFL',
    teacher_config=teacher_config,
    teacher_ckpt=teacher_ckpt,
    teacher_temperature=1.0,
    # Per-class sigmoid KD on every location, weighted by |p_t - p_s| as in BCKD (Yang et al.,
    # ICCV 2023: beta=1), normalised by the teacher's soft foreground count like GFL's own QFL is
    # by its positives.
    distill_losses=dict(
        loss_kd=dict(type='BinaryKDLoss', inputs='cls', tau=1.0, beta=1.0, loss_weight=1.0)))
