# DETR-family KD on DigitsDet from the *uncalibrated* teacher (teacher_temperature=1.0): the
# control for configs/demo/kd-cal_dino_r18w16_r18w32_digits.py. Student:
# configs/demo/dino_r18w16_digits.py, teacher: configs/demo/dino_r18w32_digits.py (train it
# first, or run `python tools/demo_detr.py`).
#   python tools/train.py configs/demo/kd_dino_r18w16_r18w32_digits.py
_base_ = ['./dino_r18w16_digits.py']

teacher_config = 'configs/demo/dino_r18w32_digits.py'
# what `python tools/train.py configs/demo/dino_r18w32_digits.py` writes (its max_iters = 1500)
teacher_ckpt = 'work_dirs/dino_r18w32_digits/iter_1500.pth'
model = dict(
    type='DistillDINO',
    teacher_config=teacher_config,
    teacher_ckpt=teacher_ckpt,
    teacher_temperature=1.0,
    # Hungarian-matching logits distillation (DETRDistill, Chang et al., ICCV 2023): every
    # decoder layer's predictions matched one-to-one to the teacher's layer (KL + L1 + GIoU
    # cost, DINO's matcher weights 2 / 5 / 2).
    query_alignment='hungarian',
    distill_losses=dict(
        # per-class sigmoid KD of the matched queries, weighted by |p_t - p_s| as in BCKD
        # (beta=1), normalised by the teacher's soft object count
        loss_kd=dict(type='BinaryKDLoss', inputs='logits', tau=1.0, beta=1.0, loss_weight=1.0),
        # box KD: L1 + GIoU against the matched teacher boxes with DINO's own box-loss weights,
        # each pair weighted by the teacher's confidence
        loss_kd_box=dict(type='BoxKDLoss', inputs='boxes', l1_weight=5.0, giou_weight=2.0,
                         loss_weight=1.0)))
