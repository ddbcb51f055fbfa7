# Prediction KD on DigitsDet from the *raw* teacher (teacher_temperature=1.0): a GFL student
# (configs/demo/gfl_r18w16_digits.py) from a Cascade R-CNN teacher
# (configs/demo/cascade-rcnn_r18w32_digits.py; train it first). The teacher's detections are soft
# targets at the priors the student's own assigner gives them (class: the teacher's score,
# quality-focal form; box: GIoU to the teacher's box, weighted by the score), docs/heterogeneous.md.
# The control of pred-cal_gfl_r18w16_cascade-rcnn-r18w32_digits.py.
#   python tools/train.py configs/demo/pred_gfl_r18w16_cascade-rcnn-r18w32_digits.py
_base_ = ['./gfl_r18w16_digits.py']

teacher_config = 'configs/demo/cascade-rcnn_r18w32_digits.py'
teacher_ckpt = 'work_dirs/cascade-rcnn_r18w32_digits/iter_400.pth'
model = dict(
    type='DistillGFL',
    teacher_config=teacher_config,
    teacher_ckpt=teacher_ckpt,
    teacher_temperature=1.0,
    distill_losses=dict(
        loss_pred_cls=dict(type='BinaryKDLoss', inputs='pred_cls', beta=2.0, loss_weight=1.0),
        loss_pred_box=dict(type='BoxKDLoss', inputs='pred_box', l1_weight=0.0,
                           giou_weight=1.0, loss_weight=1.0)))
