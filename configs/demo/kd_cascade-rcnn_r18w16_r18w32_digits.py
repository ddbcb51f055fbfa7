# Cascade R-CNN KD on DigitsDet from the *uncalibrated* teacher (teacher_temperature=1.0): the
# control for configs/demo/kd-cal_cascade-rcnn_r18w16_r18w32_digits.py. Student:
# configs/demo/cascade-rcnn_r18w16_digits.py, teacher: configs/demo/cascade-rcnn_r18w32_digits.py
# (train it first, or run `python tools/demo.py --family cascade_rcnn`).
#   python tools/train.py configs/demo/kd_cascade-rcnn_r18w16_r18w32_digits.py
_base_ = ['./cascade-rcnn_r18w16_digits.py']

teacher_config = 'configs/demo/cascade-rcnn_r18w32_digits.py'
# what `python tools/train.py configs/demo/cascade-rcnn_r18w32_digits.py` writes
teacher_ckpt = 'work_dirs/cascade-rcnn_r18w32_digits/iter_400.pth'
model = dict(
    type='DistillCascadeRCNN',  # the distiller is a CascadeRCNN (isinstance holds)
    teacher_config=teacher_config,
    teacher_ckpt=teacher_ckpt,
    teacher_temperature=1.0,
    roi_stages=[0, 1, 2],  # every stage: the teacher's stage-k head on the student's stage-k RoIs
    distill_losses=dict(
        # softmax KD (K + 1 classes) per stage, weighted by the stage loss weights (1/0.5/0.25);
        # the teacher's logits are divided by the temperature
        loss_kd_roi=dict(type='KDLoss', inputs='roi_cls', tau=1.0, loss_weight=1.0)))
