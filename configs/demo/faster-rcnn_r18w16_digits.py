# Faster R-CNN student for DigitsDet (no distillation): the backbone, FPN and RPN of
# configs/demo/cascade-rcnn_r18w16_digits.py (ResNet-18 of base width 16, FPN with 32 channels on
# 5 levels) and one RoI stage: the Cascade student's first stage (IoU 0.5, 64 sampled RoIs,
# 32-channel RoI features, 128-wide FCs), class-specific boxes as in stock Faster R-CNN. Data,
# schedule and runtime are the Cascade demo's. The student of the Cascade R-CNN teacher in
# configs/demo/pkd_faster-rcnn_r18w16_cascade-rcnn-r18w32_digits.py and its pred[-cal] siblings.
#   python tools/train.py configs/demo/faster-rcnn_r18w16_digits.py
_base_ = ['./cascade-rcnn_r18w16_digits.py']

model = dict(
    type='FasterRCNN',
    roi_head=dict(
        _delete_=True,
        type='StandardRoIHead',
        bbox_roi_extractor=dict(
            type='SingleRoIExtractor',
            roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=0),
            out_channels=32,
            featmap_strides=[4, 8, 16, 32]),
        bbox_head=dict(
            type='Shared2FCBBoxHead',
            in_channels=32,
            fc_out_channels=128,
            roi_feat_size=7,
            num_classes=10,
            bbox_coder=dict(
                type='DeltaXYWHBBoxCoder', target_means=[0., 0., 0., 0.],
                target_stds=[0.1, 0.1, 0.2, 0.2]),
            reg_class_agnostic=False,
            loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
            loss_bbox=dict(type='L1Loss', loss_weight=1.0))),
    train_cfg=dict(
        rcnn=dict(
            _delete_=True,
            assigner=dict(
                type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.5, min_pos_iou=0.5,
                match_low_quality=False, ignore_iof_thr=-1),
            sampler=dict(
                type='RandomSampler', num=64, pos_fraction=0.25, neg_pos_ub=-1,
                add_gt_as_proposals=True),
            pos_weight=-1,
            debug=False)))
