# CIFAR-100 data for the classification distillation benchmark (CRD / mdistiller protocol):
# 50,000 training images with random 32x32 crop of the 4-pixel zero-padded image + horizontal flip,
# evaluation on the 10,000 test images (the benchmark reports test accuracy; there is no separate
# validation split). Put the unpacked `cifar-100-python/` folder under `data_root`. Elsewhere:
# `--cfg-options train_dataloader.dataset.data_root=PATH val_dataloader.dataset.data_root=PATH
# test_dataloader.dataset.data_root=PATH` (or a config that inherits this one and sets
# `data_root` before redefining the dataloaders).
dataset_type = 'CIFAR100Dataset'
data_root = 'data/cifar100'

# CIFAR-100 RGB mean/std (0.5071, 0.4867, 0.4408) / (0.2675, 0.2565, 0.2761), as in CRD and
# mdistiller, on the 0-255 scale used by ImgDataPreprocessor.
data_preprocessor = dict(
    type='ImgDataPreprocessor',
    mean=[129.3105, 124.1085, 112.404],
    std=[68.2125, 65.4075, 70.4055],
    bgr_to_rgb=False)
model = dict(data_preprocessor=data_preprocessor)

train_pipeline = [
    dict(type='RandomCropPad', size=32, padding=4, pad_val=0),
    dict(type='RandomHFlip', prob=0.5),
    dict(type='PackClsInputs'),
]
test_pipeline = [dict(type='PackClsInputs')]

train_dataloader = dict(
    batch_size=64,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='pseudo_collate'),
    dataset=dict(type=dataset_type, data_root=data_root, split='train', pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=128,
    num_workers=4,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='pseudo_collate'),
    dataset=dict(type=dataset_type, data_root=data_root, split='test', pipeline=test_pipeline))
test_dataloader = val_dataloader

val_evaluator = dict(type='TopKAccuracy', topk=(1, 5))
test_evaluator = val_evaluator
