# Student baseline of the CrossKD-GFL demo (`python tools/demo.py --family crosskd_gfl`): GFL with
# the ResNet-18 width-16 backbone of configs/demo/gfl_r18w16_digits.py but the teacher's neck and
# head (FPN with 64 channels, GFL head with 2 stacked 64-channel convs). CrossKD feeds the
# student's head features into the teacher's remaining head layers, so both heads must have the
# same tower depth and width (as in the CrossKD paper, whose R-50 student and R-101 teacher share
# the head design).
#   python tools/train.py configs/demo/gfl_r18w16-h64_digits.py
# Everything else - head layout, losses, data, schedule - is the teacher's
# (configs/demo/gfl_r18w32_digits.py).
_base_ = ['./gfl_r18w32_digits.py']

model = dict(
    backbone=dict(base_channels=16),
    neck=dict(in_channels=[32, 64, 128], out_channels=64))
