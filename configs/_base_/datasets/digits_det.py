# DigitsDet: 128x128 gray canvases with 1-6 real handwritten digits (scikit-learn's 8x8 scans,
# upscaled to 14-40 px) on a cluttered background; 10 classes '0'..'9'. Built on first use in
# `data_root` (seconds, no download) or with `python tools/build_digits_det.py`.
# Splits: train (3000 images) / calib (500, for fitting a teacher's temperature) / val (500);
# no digit scan is shared between splits.
default_scope = 'mmdet'
custom_imports = dict(imports=['mmkdcal'], allow_failed_imports=False)

dataset_type = 'DigitsDetDataset'
data_root = 'data/digits_det/'
# Keyword arguments of mmkdcal.datasets.build_digits_det (n_train, n_calib, n_val, canvas, seed,
# min_digits, max_digits, digit_size); empty = its defaults. Every split must use the same dict.
digits_det_build = dict()
backend_args = None

# No flip (digits are not mirror-symmetric) and no scale jitter (digit sizes already vary 14-40 px);
# the Resize is a no-op on the 128x128 images that records `scale_factor` for mmdet's heads.
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(128, 128), keep_ratio=True),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='Resize', scale=(128, 128), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]

train_dataloader = dict(
    batch_size=16,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    batch_sampler=dict(type='AspectRatioBatchSampler'),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        build_cfg=digits_det_build,
        ann_file='annotations/train.json',
        data_prefix=dict(img='train/'),
        filter_cfg=dict(filter_empty_gt=True, min_size=4),
        pipeline=train_pipeline,
        backend_args=backend_args))
val_dataloader = dict(
    batch_size=16,
    num_workers=1,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        build_cfg=digits_det_build,
        ann_file='annotations/val.json',
        data_prefix=dict(img='val/'),
        test_mode=True,
        pipeline=test_pipeline,
        backend_args=backend_args))
test_dataloader = val_dataloader

# The calibration split, read with the test pipeline: configs that calibrate a teacher use it,
# e.g. `custom_hooks = [dict(type='TeacherCalibrationHook', dataloader=calib_dataloader)]`.
calib_dataloader = dict(
    batch_size=16,
    num_workers=1,
    persistent_workers=False,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        build_cfg=digits_det_build,
        ann_file='annotations/calib.json',
        data_prefix=dict(img='calib/'),
        test_mode=True,
        pipeline=test_pipeline,
        backend_args=backend_args))

# COCO bbox mAP plus the detection calibration error (D-ECE, Kueppers et al. 2020) of the
# detections above score 0.3, matched to ground truth at IoU 0.5.
val_evaluator = [
    dict(
        type='CocoMetric',
        ann_file=data_root + 'annotations/val.json',
        metric='bbox',
        format_only=False,
        backend_args=backend_args),
    dict(type='DetectionCalibrationMetric', score_thr=0.3, iou_thr=0.5, n_bins=10),
]
test_evaluator = val_evaluator
