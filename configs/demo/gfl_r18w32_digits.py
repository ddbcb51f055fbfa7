# Teacher for the DigitsDet demo: GFL with a ResNet-18 of base width 32 (channels 32/64/128/256),
# FPN with 64 channels and a GFL head with 2 stacked 64-channel convs. Trained from scratch on CPU
# in a few minutes:  python tools/train.py configs/demo/gfl_r18w32_digits.py
# Its head layout (strides 8/16/32, one 2x-stride square anchor per location, reg_max 16,
# 10 classes) is the same as configs/demo/gfl_r18w16_digits.py (the student), so their head
# outputs can be compared location by location.
_base_ = ['../_base_/datasets/digits_det.py']

model = dict(
    type='GFL',
    data_preprocessor=dict(
        type='DetDataPreprocessor',
        mean=[36.0, 36.0, 36.0],  # DigitsDet pixel mean/std (gray read as 3 channels)
        std=[39.0, 39.0, 39.0],
        bgr_to_rgb=False,
        pad_size_divisor=32),
    backbone=dict(
        type='ResNet',
        depth=18,
        base_channels=32,
        num_stages=4,
        out_indices=(1, 2, 3),
        frozen_stages=-1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        style='pytorch',
        init_cfg=None),  # from scratch: no pretrained download
    neck=dict(
        type='FPN',
        in_channels=[64, 128, 256],
        out_channels=64,
        start_level=0,
        add_extra_convs=False,
        num_outs=3),
    bbox_head=dict(
        type='GFLHead',
        num_classes=10,
        in_channels=64,
        stacked_convs=2,
        feat_channels=64,
        norm_cfg=dict(type='GN', num_groups=16, requires_grad=True),
        anchor_generator=dict(
            type='AnchorGenerator',
            ratios=[1.0],
            octave_base_scale=2,
            scales_per_octave=1,
            strides=[8, 16, 32]),
        loss_cls=dict(
            type='QualityFocalLoss', use_sigmoid=True, beta=2.0, loss_weight=1.0),
        loss_dfl=dict(type='DistributionFocalLoss', loss_weight=0.25),
        reg_max=16,
        loss_bbox=dict(type='GIoULoss', loss_weight=2.0)),
    train_cfg=dict(
        assigner=dict(type='ATSSAssigner', topk=9),
        allowed_border=-1,
        pos_weight=-1,
        debug=False),
    test_cfg=dict(
        nms_pre=1000,
        min_bbox_size=0,
        score_thr=0.05,
        nms=dict(type='nms', iou_threshold=0.6),
        max_per_img=100))

# Schedule: iteration based, linear warm-up then cosine decay; validation and checkpoint at the end.
max_iters = 400
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=2e-3, weight_decay=0.05),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0),
    clip_grad=dict(max_norm=35, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=50, end=max_iters, eta_min=2e-5),
]
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=20),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # AtomicCheckpointHook (mmkdcal): CheckpointHook whose saves are atomic (a killed or disk-full
    # save keeps the previous checkpoint)
    checkpoint=dict(type='AtomicCheckpointHook', by_epoch=False, interval=max_iters,
                    max_keep_ckpts=1),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='DetVisualizationHook'))
log_processor = dict(type='LogProcessor', window_size=20, by_epoch=False)

# Runtime (as mmdet's _base_/default_runtime.py, whose default_scope the data base already sets).
env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'))
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='DetLocalVisualizer', vis_backends=vis_backends, name='visualizer')
log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0)
