# Prediction KD on DigitsDet from the *raw* teacher (teacher_temperature=1.0): a Faster R-CNN
# student (configs/demo/faster-rcnn_r18w16_digits.py) from a GFL teacher
# (configs/demo/gfl_r18w32_digits.py; train it first). The teacher's detections are assigned to
# the student's sampled RoIs by its rcnn assigner (class: the (K + 1)-way soft target, the
# teacher's score on its class and the rest on the background, KDLoss at tau=1; box: GIoU to
# the teacher's box, weighted by the score), docs/heterogeneous.md.
#   python tools/train.py configs/demo/pred_faster-rcnn_r18w16_gfl-r18w32_digits.py
_base_ = ['./faster-rcnn_r18w16_digits.py']

teacher_config = 'configs/demo/gfl_r18w32_digits.py'
teacher_ckpt = 'work_dirs/gfl_r18w32_digits/iter_400.pth'
model = dict(
    type='DistillFasterRCNN',
    teacher_config=teacher_config,
    teacher_ckpt=teacher_ckpt,
    teacher_temperature=1.0,
    distill_losses=dict(
        loss_pred_cls=dict(type='KDLoss', inputs='roi_pred_cls', tau=1.0, loss_weight=1.0),
        loss_pred_box=dict(type='BoxKDLoss', inputs='roi_pred_box', l1_weight=0.0,
                           giou_weight=1.0, loss_weight=1.0)))
