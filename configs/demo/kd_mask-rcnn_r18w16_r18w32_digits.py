# Mask R-CNN KD on DigitsDet from the *uncalibrated* teacher (teacher_temperature=1.0): the control
# for configs/demo/kd-cal_mask-rcnn_r18w16_r18w32_digits.py. Student:
# configs/demo/mask-rcnn_r18w16_digits.py, teacher: configs/demo/mask-rcnn_r18w32_digits.py (train
# it first, or run `python tools/demo.py --family mask_rcnn`).
#   python tools/train.py configs/demo/kd_mask-rcnn_r18w16_r18w32_digits.py
_base_ = ['./mask-rcnn_r18w16_digits.py']

teacher_config = 'configs/demo/mask-rcnn_r18w32_digits.py'
# what `python tools/train.py configs/demo/mask-rcnn_r18w32_digits.py` writes
teacher_ckpt = 'work_dirs/mask-rcnn_r18w32_digits/iter_400.pth'
model = dict(
    type='DistillMaskRCNN',  # the distiller is a MaskRCNN (isinstance holds)
    teacher_config=teacher_config,
    teacher_ckpt=teacher_ckpt,
    teacher_temperature=1.0,
    distill_losses=dict(
        # softmax KD (K + 1 classes) of the RoI head on the student's sampled RoIs, the teacher's
        # RoI head run on the same RoIs; the teacher's logits are divided by the temperature
        loss_kd_roi=dict(type='KDLoss', inputs='roi_cls', tau=1.0, loss_weight=1.0),
        # per-pixel sigmoid KD (beta=1) of the positive RoIs' mask logits at their class
        loss_kd_mask=dict(type='BinaryKDLoss', inputs='roi_mask', tau=1.0, beta=1.0,
                          loss_weight=1.0)))
