# Student baseline for the DigitsDet demo (no distillation): GFL with a ResNet-18 of base width
# 16 (channels 16/32/64/128), FPN with 32 channels and a GFL head with 1 stacked 32-channel conv.
#   python tools/train.py configs/demo/gfl_r18w16_digits.py
# Everything else - head layout (strides 8/16/32, anchors, reg_max 16, 10 classes), data,
# schedule - is inherited from the teacher config configs/demo/gfl_r18w32_digits.py, so the
# student's head outputs can be compared with the teacher's location by location.
_base_ = ['./gfl_r18w32_digits.py']

model = dict(
    backbone=dict(base_channels=16),
    neck=dict(in_channels=[32, 64, 128], out_channels=32),
    bbox_head=dict(
        in_channels=32,
        stacked_convs=1,
        feat_channels=32,
        norm_cfg=dict(type='GN', num_groups=8, requires_grad=True)))
