# Feature KD on DigitsDet across head families: a Faster R-CNN student
# (configs/demo/faster-rcnn_r18w16_digits.py) from a GFL teacher (configs/demo/gfl_r18w32_digits.py;
# train it first). PKD (Cao et al., NeurIPS 2022) on the FPN levels paired by stride
# (docs/heterogeneous.md: the student's 4-64 against the teacher's 8-32, three pairs); a 1x1
# adapter maps the student's 32 neck channels to the teacher's 64. The no-KD control is the
# student config; the prediction-KD arms are pred_faster-rcnn_r18w16_gfl-r18w32_digits.py (raw
# teacher) and pred-cal_faster-rcnn_r18w16_gfl-r18w32_digits.py (calibrated teacher).
#   python tools/train.py configs/demo/pkd_faster-rcnn_r18w16_gfl-r18w32_digits.py
_base_ = ['./faster-rcnn_r18w16_digits.py']

teacher_config = 'configs/demo/gfl_r18w32_digits.py'
teacher_ckpt = 'work_dirs/gfl_r18w32_digits/iter_400.pth'
model = dict(
    type='DistillFasterRCNN',
    teacher_config=teacher_config,
    teacher_ckpt=teacher_ckpt,
    teacher_temperature=1.0,
    distill_losses=dict(
        loss_pkd=dict(type='PKDLoss', inputs='neck', student_channels=32, teacher_channels=64,
                      loss_weight=6.0)))
