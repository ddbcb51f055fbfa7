# RetinaNet student for DigitsDet (no distillation): ResNet-18 layout of base width 16, FPN with
# 32 channels and a RetinaNet head with 1 stacked 32-channel conv.
#   python tools/train.py configs/demo/retinanet_r18w16_digits.py
# Head layout (strides 8/16/32, 4 anchors per location, 10 classes), data and schedule are
# inherited from configs/demo/retinanet_r18w32_digits.py, so the student's head outputs can be
# compared with the teacher's location by location.
_base_ = ['./retinanet_r18w32_digits.py']

model = dict(
    backbone=dict(base_channels=16),
    neck=dict(in_channels=[32, 64, 128], out_channels=32),
    bbox_head=dict(
        in_channels=32,
        stacked_convs=1,
        feat_channels=32,
        norm_cfg=dict(type='GN', num_groups=8, requires_grad=True)))
