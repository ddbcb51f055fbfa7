# RetinaNet teacher for DigitsDet: the backbone and FPN of configs/demo/gfl_r18w32_digits.py
# (ResNet-18 layout of base width 32, FPN with 64 channels, strides 8/16/32) and a RetinaNet head
# with 2 stacked 64-channel convs (GroupNorm, as the GFL head, for training from scratch),
# 4 anchors per location (2 scales x 2 aspect ratios, for the narrow digits), focal loss.
#   python tools/train.py configs/demo/retinanet_r18w32_digits.py
# Its head layout equals that of configs/demo/retinanet_r18w16_digits.py (the student).
_base_ = ['./gfl_r18w32_digits.py']

model = dict(
    type='RetinaNet',
    bbox_head=dict(
        _delete_=True,
        type='RetinaHead',
        num_classes=10,
        in_channels=64,
        stacked_convs=2,
        feat_channels=64,
        norm_cfg=dict(type='GN', num_groups=16, requires_grad=True),
        anchor_generator=dict(
            type='AnchorGenerator',
            octave_base_scale=2,
            scales_per_octave=2,
            ratios=[1.0, 2.0],
            strides=[8, 16, 32]),
        bbox_coder=dict(
            type='DeltaXYWHBBoxCoder',
            target_means=[.0, .0, .0, .0],
            target_stds=[1.0, 1.0, 1.0, 1.0]),
        loss_cls=dict(
            type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.0),
        loss_bbox=dict(type='L1Loss', loss_weight=1.0)),
    train_cfg=dict(
        _delete_=True,
        assigner=dict(
            type='MaxIoUAssigner',
            pos_iou_thr=0.5,
            neg_iou_thr=0.4,
            min_pos_iou=0,
            ignore_iof_thr=-1),
        sampler=dict(type='PseudoSampler'),
        allowed_border=-1,
        pos_weight=-1,
        debug=False),
    test_cfg=dict(nms=dict(type='nms', iou_threshold=0.5)))
