# Prediction KD on DigitsDet from the *raw* teacher (teacher_temperature=1.0): a Faster R-CNN
# student (configs/demo/faster-rcnn_r18w16_digits.py) from a Cascade R-CNN teacher
# (configs/demo/cascade-rcnn_r18w32_digits.py; train it first). The teacher's last stage
# (teacher_roi_stage=2) classifies the RoIs the student sampled; softmax KD (K + 1 classes) on its
# logits. The control of pred-cal_faster-rcnn_r18w16_cascade-rcnn-r18w32_digits.py.
#   python tools/train.py configs/demo/pred_faster-rcnn_r18w16_cascade-rcnn-r18w32_digits.py
_base_ = ['./faster-rcnn_r18w16_digits.py']

teacher_config = 'configs/demo/cascade-rcnn_r18w32_digits.py'
teacher_ckpt = 'work_dirs/cascade-rcnn_r18w32_digits/iter_400.pth'
model = dict(
    type='DistillFasterRCNN',
    teacher_config=teacher_config,
    teacher_ckpt=teacher_ckpt,
    teacher_temperature=1.0,
    teacher_roi_stage=2,
    distill_losses=dict(
        loss_kd_roi=dict(type='KDLoss', inputs='roi_cls', tau=1.0, loss_weight=1.0)))
