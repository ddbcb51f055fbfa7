# Mask R-CNN student baseline for the DigitsDet demo (no distillation): a ResNet-18 of base width
# 16 (channels 16/32/64/128), FPN with 32 channels, RPN and RoI head at 32 channels, 128-wide FCs.
# Everything else - anchors, losses, sampling, data (with masks), schedule - is the teacher's
# (configs/demo/mask-rcnn_r18w32_digits.py).
#   python tools/train.py configs/demo/mask-rcnn_r18w16_digits.py
_base_ = ['./mask-rcnn_r18w32_digits.py']

model = dict(
    backbone=dict(base_channels=16),
    neck=dict(in_channels=[16, 32, 64, 128], out_channels=32),
    rpn_head=dict(in_channels=32, feat_channels=32),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=32),
        bbox_head=dict(in_channels=32, fc_out_channels=128),
        mask_roi_extractor=dict(out_channels=32),
        mask_head=dict(in_channels=32, conv_out_channels=32)))
