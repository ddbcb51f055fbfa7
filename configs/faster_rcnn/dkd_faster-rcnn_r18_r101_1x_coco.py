# RoI-level DKD from an *uncalibrated* teacher: Faster R-CNN R-101 (ms-3x) -> Faster R-CNN R-18
# (1x) on COCO, mdistiller's DKD-R18-R101 setting (alpha 1.0, beta 0.25, tau 1.0) in
# MMDetection. The baseline of dkd-cal_faster-rcnn_r18_r101_1x_coco.py.
#   python tools/train.py configs/faster_rcnn/dkd_faster-rcnn_r18_r101_1x_coco.py
_base_ = './dkd_faster-rcnn_r50_r101_1x_coco.py'

model = dict(
    backbone=dict(
        depth=18,
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet18')),
    neck=dict(in_channels=[64, 128, 256, 512]))
