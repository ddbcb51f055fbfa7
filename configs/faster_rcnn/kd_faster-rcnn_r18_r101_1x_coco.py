# RoI-level softmax KD from an *uncalibrated* teacher: Faster R-CNN R-101 (ms-3x) -> Faster R-CNN
# R-18 (1x) on COCO; the pair of mdistiller's detection benchmark. Same distillation as
# kd_faster-rcnn_r50_r101_1x_coco.py; the student is faster-rcnn_r18_fpn_1x_coco.py (ResNet-18,
# FPN inputs 64/128/256/512, ImageNet-pretrained torchvision weights).
#   python tools/train.py configs/faster_rcnn/kd_faster-rcnn_r18_r101_1x_coco.py
_base_ = './kd_faster-rcnn_r50_r101_1x_coco.py'

model = dict(
    backbone=dict(
        depth=18,
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet18')),
    neck=dict(in_channels=[64, 128, 256, 512]))
