# RTMDet teacher for the DigitsDet demo (`python tools/demo.py --family rtmdet`): a tiny CSPNeXt
# (widen_factor 0.25: stage outputs 64/128/256 channels, like the ResNet-18 width-32 teacher of
# the GFL demo), CSPNeXtPAFPN with 64 channels, RTMDetSepBNHead with 2 stacked 64-channel convs.
# Stock RTMDet task parts (QualityFocalLoss, GIoULoss, DynamicSoftLabelAssigner); BN instead of
# SyncBN (one process), no pretrained download. Data, schedule and runtime are those of the GFL
# demo teacher (configs/demo/gfl_r18w32_digits.py), whose model this replaces; RTMDet's own
# mosaic/mix-up pipeline and EMA are left out so every demo family trains on the same data.
#   python tools/train.py configs/demo/rtmdet_cspnext-w32_digits.py
# Its head layout (strides 8/16/32, one point prior per location, 10 classes) is the student's
# (configs/demo/rtmdet_cspnext-w16_digits.py), so their outputs compare location by location.
_base_ = ['./gfl_r18w32_digits.py']

model = dict(
    _delete_=True,
    type='RTMDet',
    data_preprocessor=dict(
        type='DetDataPreprocessor',
        mean=[36.0, 36.0, 36.0],  # DigitsDet pixel mean/std (gray read as 3 channels)
        std=[39.0, 39.0, 39.0],
        bgr_to_rgb=False,
        pad_size_divisor=32,
        batch_augments=None),
    backbone=dict(
        type='CSPNeXt',
        arch='P5',
        expand_ratio=0.5,
        deepen_factor=0.167,
        widen_factor=0.25,
        channel_attention=True,
        norm_cfg=dict(type='BN'),
        act_cfg=dict(type='SiLU', inplace=True),
        init_cfg=None),  # from scratch: no pretrained download
    neck=dict(
        type='CSPNeXtPAFPN',
        in_channels=[64, 128, 256],
        out_channels=64,
        num_csp_blocks=1,
        expand_ratio=0.5,
        norm_cfg=dict(type='BN'),
        act_cfg=dict(type='SiLU', inplace=True)),
    bbox_head=dict(
        type='RTMDetSepBNHead',
        num_classes=10,
        in_channels=64,
        stacked_convs=2,
        feat_channels=64,
        anchor_generator=dict(type='MlvlPointGenerator', offset=0, strides=[8, 16, 32]),
        bbox_coder=dict(type='DistancePointBBoxCoder'),
        loss_cls=dict(type='QualityFocalLoss', use_sigmoid=True, beta=2.0, loss_weight=1.0),
        loss_bbox=dict(type='GIoULoss', loss_weight=2.0),
        with_objectness=False,
        exp_on_reg=False,
        share_conv=True,
        pred_kernel_size=1,
        norm_cfg=dict(type='BN'),
        act_cfg=dict(type='SiLU', inplace=True)),
    train_cfg=dict(
        assigner=dict(type='DynamicSoftLabelAssigner', topk=13),
        allowed_border=-1,
        pos_weight=-1,
        debug=False),
    test_cfg=dict(
        nms_pre=1000,
        min_bbox_size=0,
        score_thr=0.05,
        nms=dict(type='nms', iou_threshold=0.65),
        max_per_img=100))
# RTMDetSepBNHead shares its convs between levels (share_conv): each shared parameter goes into
# one parameter group (as RTMDet's own configs do).
optim_wrapper = dict(paramwise_cfg=dict(bypass_duplicate=True))
