# Mask R-CNN teacher for the DigitsDet demo (`python tools/demo.py --family mask_rcnn`): a
# ResNet-18 of base width 32 (channels 32/64/128/256, as the GFL demo teacher), FPN with 64
# channels on 5 levels, RPN, and the stock RoI head (Shared2FCBBoxHead, FCNMaskHead with 4 convs)
# at 64 channels and 256-wide FCs. Stock Mask R-CNN task losses and assigners; sized for CPU: RPN
# anchors of scale 4 (16-256 px; DigitsDet digits are 14-40 px), 64 sampled RoIs per image,
# fewer proposals, batches of 8 images. DigitsDet is built with instance masks
# (`build_cfg.with_masks`: each digit's ink pixels), in its own folder. Schedule and runtime are
# the GFL demo teacher's (configs/demo/gfl_r18w32_digits.py), whose model this replaces.
# Evaluated with COCO bbox and segm mAP.
#   python tools/train.py configs/demo/mask-rcnn_r18w32_digits.py
_base_ = ['./gfl_r18w32_digits.py']

model = dict(
    _delete_=True,
    type='MaskRCNN',
    data_preprocessor=dict(
        type='DetDataPreprocessor',
        mean=[36.0, 36.0, 36.0],  # DigitsDet pixel mean/std (gray read as 3 channels)
        std=[39.0, 39.0, 39.0],
        bgr_to_rgb=False,
        pad_mask=True,
        pad_size_divisor=32),
    backbone=dict(
        type='ResNet',
        depth=18,
        base_channels=32,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        frozen_stages=-1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        style='pytorch',
        init_cfg=None),  # from scratch: no pretrained download
    neck=dict(type='FPN', in_channels=[32, 64, 128, 256], out_channels=64, num_outs=5),
    rpn_head=dict(
        type='RPNHead',
        in_channels=64,
        feat_channels=64,
        anchor_generator=dict(
            type='AnchorGenerator', scales=[4], ratios=[0.5, 1.0, 2.0],
            strides=[4, 8, 16, 32, 64]),
        bbox_coder=dict(
            type='DeltaXYWHBBoxCoder', target_means=[.0, .0, .0, .0],
            target_stds=[1.0, 1.0, 1.0, 1.0]),
        loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0),
        loss_bbox=dict(type='L1Loss', loss_weight=1.0)),
    roi_head=dict(
        type='StandardRoIHead',
        bbox_roi_extractor=dict(
            type='SingleRoIExtractor',
            roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=0),
            out_channels=64,
            featmap_strides=[4, 8, 16, 32]),
        bbox_head=dict(
            type='Shared2FCBBoxHead',
            in_channels=64,
            fc_out_channels=256,
            roi_feat_size=7,
            num_classes=10,
            bbox_coder=dict(
                type='DeltaXYWHBBoxCoder', target_means=[0., 0., 0., 0.],
                target_stds=[0.1, 0.1, 0.2, 0.2]),
            reg_class_agnostic=False,
            loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
            loss_bbox=dict(type='L1Loss', loss_weight=1.0)),
        mask_roi_extractor=dict(
            type='SingleRoIExtractor',
            roi_layer=dict(type='RoIAlign', output_size=14, sampling_ratio=0),
            out_channels=64,
            featmap_strides=[4, 8, 16, 32]),
        mask_head=dict(
            type='FCNMaskHead',
            num_convs=4,
            in_channels=64,
            conv_out_channels=64,
            num_classes=10,
            loss_mask=dict(type='CrossEntropyLoss', use_mask=True, loss_weight=1.0))),
    train_cfg=dict(
        rpn=dict(
            assigner=dict(
                type='MaxIoUAssigner', pos_iou_thr=0.7, neg_iou_thr=0.3, min_pos_iou=0.3,
                match_low_quality=True, ignore_iof_thr=-1),
            sampler=dict(
                type='RandomSampler', num=256, pos_fraction=0.5, neg_pos_ub=-1,
                add_gt_as_proposals=False),
            allowed_border=-1,
            pos_weight=-1,
            debug=False),
        rpn_proposal=dict(
            nms_pre=1000, max_per_img=300, nms=dict(type='nms', iou_threshold=0.7),
            min_bbox_size=0),
        rcnn=dict(
            assigner=dict(
                type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.5, min_pos_iou=0.5,
                match_low_quality=True, ignore_iof_thr=-1),
            sampler=dict(
                type='RandomSampler', num=64, pos_fraction=0.25, neg_pos_ub=-1,
                add_gt_as_proposals=True),
            mask_size=28,
            pos_weight=-1,
            debug=False)),
    test_cfg=dict(
        rpn=dict(
            nms_pre=500, max_per_img=100, nms=dict(type='nms', iou_threshold=0.7),
            min_bbox_size=0),
        rcnn=dict(
            score_thr=0.05, nms=dict(type='nms', iou_threshold=0.5), max_per_img=100,
            mask_thr_binary=0.5)))

# DigitsDet with instance masks, in its own folder (a build with masks is another build).
data_root = 'data/digits_det_masks/'
digits_det_build = dict(with_masks=True)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale=(128, 128), keep_ratio=True),
    dict(type='PackDetInputs'),
]
# Batches of 8 images (the GFL demo's 16 at half the cost per iteration on a CPU).
train_dataloader = dict(
    batch_size=8,
    dataset=dict(data_root=data_root, build_cfg=digits_det_build, pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(data_root=data_root, build_cfg=digits_det_build))
test_dataloader = val_dataloader
calib_dataloader = dict(dataset=dict(data_root=data_root, build_cfg=digits_det_build))
val_evaluator = [
    dict(type='CocoMetric', ann_file=data_root + 'annotations/val.json', metric=['bbox', 'segm'],
         format_only=False),
    dict(type='DetectionCalibrationMetric', score_thr=0.3, iou_thr=0.5, n_bins=10),
]
test_evaluator = val_evaluator
