# Student baseline (no distillation): DINO-4scale with a ResNet-18 backbone, COCO, 12e schedule.
# MMDetection's model zoo has no published ResNet-18 DINO-4scale, so this config trains the
# reference that the R-18 distillation configs of this folder are compared with. Everything except
# the backbone depth, its ImageNet weights and the neck input widths is the stock
# dino-4scale_r50_8xb2-12e_coco.py.
#   python tools/train.py configs/dino/dino-4scale_r18_8xb2-12e_coco.py
_base_ = 'mmdet::dino/dino-4scale_r50_8xb2-12e_coco.py'
custom_imports = dict(imports=['mmkdcal'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        depth=18,
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet18')),
    neck=dict(in_channels=[128, 256, 512]))

# Checkpoints: MMDetection's CheckpointHook with atomic saves (mmkdcal's AtomicCheckpointHook: a
# killed or disk-full save keeps the previous checkpoint); the other settings stay the base's.
default_hooks = dict(checkpoint=dict(type='AtomicCheckpointHook'))
