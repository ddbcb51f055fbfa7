# KD on DigitsDet for RetinaNet: student configs/demo/retinanet_r18w16_digits.py, teacher
# configs/demo/retinanet_r18w32_digits.py (train it first), per-class sigmoid KD on the class
# logits of every anchor, as configs/demo/kd_gfl_r18w16_r18w32_digits.py does for GFL. The
# teacher is used raw (teacher_temperature=1.0); give a fitted temperature with
# `--cfg-options model.teacher_temperature=T` (tools/calibrate.py prints it).
#   python tools/train.py configs/demo/kd_retinanet_r18w16_r18w32_digits.py
_base_ = ['./retinanet_r18w16_digits.py']

teacher_config = 'configs/demo/retinanet_r18w32_digits.py'
teacher_ckpt = 'work_dirs/retinanet_r18w32_digits/iter_400.pth'
model = dict(
    type='DistillRetinaNet',
    teacher_config=teacher_config,
    teacher_ckpt=teacher_ckpt,
    teacher_temperature=1.0,
    distill_losses=dict(
        loss_kd=dict(type='BinaryKDLoss', inputs='cls', tau=1.0, beta=1.0, loss_weight=1.0)))
