# RTMDet student baseline for the DigitsDet demo (no distillation): CSPNeXt with widen_factor
# 0.125 (stage outputs 32/64/128 channels), CSPNeXtPAFPN with 32 channels, RTMDetSepBNHead with
# 2 stacked 32-channel convs. Everything else - head layout, losses, data, schedule - is the
# teacher's (configs/demo/rtmdet_cspnext-w32_digits.py).
#   python tools/train.py configs/demo/rtmdet_cspnext-w16_digits.py
_base_ = ['./rtmdet_cspnext-w32_digits.py']

model = dict(
    backbone=dict(widen_factor=0.125),
    neck=dict(in_channels=[32, 64, 128], out_channels=32),
    bbox_head=dict(in_channels=32, feat_channels=32))
