# Feature KD on DigitsDet across head families: a Faster R-CNN student
# (configs/demo/faster-rcnn_r18w16_digits.py) from a Cascade R-CNN teacher
# (configs/demo/cascade-rcnn_r18w32_digits.py; train it first). PKD (Cao et al., NeurIPS 2022) on
# the FPN levels paired by stride (docs/heterogeneous.md); a 1x1 adapter maps the student's 32 neck
# channels to the teacher's 64 (levels of stride 4-64: 5 pairs). The no-KD control is the student
# config; the prediction-KD arms are pred_faster-rcnn_r18w16_cascade-rcnn-r18w32_digits.py (raw
# teacher) and pred-cal_faster-rcnn_r18w16_cascade-rcnn-r18w32_digits.py (calibrated teacher).
#   python tools/train.py configs/demo/pkd_faster-rcnn_r18w16_cascade-rcnn-r18w32_digits.py
_base_ = ['./faster-rcnn_r18w16_digits.py']

teacher_config = 'configs/demo/cascade-rcnn_r18w32_digits.py'
teacher_ckpt = 'work_dirs/cascade-rcnn_r18w32_digits/iter_400.pth'
model = dict(
    type='DistillFasterRCNN',
    teacher_config=teacher_config,
    teacher_ckpt=teacher_ckpt,
    teacher_temperature=1.0,
    teacher_roi_stage=2,  # required for a cascade teacher of a one-stage student (unused by PKD)
    distill_losses=dict(
        loss_pkd=dict(type='PKDLoss', inputs='neck', student_channels=32, teacher_channels=64,
                      loss_weight=6.0)))
