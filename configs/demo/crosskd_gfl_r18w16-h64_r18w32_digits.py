# CrossKD (Wang et al., CVPR 2024) for GFL on DigitsDet, from the *uncalibrated* teacher
# (teacher_temperature=1.0): the control for
# configs/demo/crosskd-cal_gfl_r18w16-h64_r18w32_digits.py. Student:
# configs/demo/gfl_r18w16-h64_digits.py, teacher: configs/demo/gfl_r18w32_digits.py (train it
# first, or run `python tools/demo.py --family crosskd_gfl`).
#   python tools/train.py configs/demo/crosskd_gfl_r18w16-h64_r18w32_digits.py
_base_ = ['./gfl_r18w16-h64_digits.py']

teacher_config = 'configs/demo/gfl_r18w32_digits.py'
# what `python tools/train.py configs/demo/gfl_r18w32_digits.py` writes (its max_iters = 400)
teacher_ckpt = 'work_dirs/gfl_r18w32_digits/iter_400.pth'
model = dict(
    type='DistillGFL',
    teacher_config=teacher_config,
    teacher_ckpt=teacher_ckpt,
    teacher_temperature=1.0,
    # the student's tower features after its first conv (of 2) go through the teacher's second
    # conv and predictors; the crossed outputs are distilled towards the teacher's own
    crosskd=dict(layer=1),
    distill_losses=dict(
        # per-class sigmoid KD (BCKD, beta=1) of the crossed class logits
        loss_kd_xcls=dict(type='BinaryKDLoss', inputs='crosskd_cls', tau=1.0, beta=1.0,
                          loss_weight=1.0),
        # LD (tau 10, weight 0.25, as the LD paper) of the crossed box distributions
        loss_kd_xreg=dict(type='LDLoss', inputs='crosskd_reg', tau=10.0, loss_weight=0.25)))
