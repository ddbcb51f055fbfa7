# Student baseline (no distillation): Deformable DETR (box refinement, two-stage) with a ResNet-18
# backbone, COCO, 50e schedule. MMDetection's model zoo has no published ResNet-18 Deformable DETR
# (box refinement, two-stage), so this config trains the reference that the R-18 distillation
# configs of this folder are compared with. Everything except the backbone depth, its ImageNet
# weights and the neck input widths is the stock
# deformable-detr-refine-twostage_r50_16xb2-50e_coco.py.
#   python tools/train.py configs/deformable_detr/deformable-detr-refine-twostage_r18_16xb2-50e_coco.py  # noqa: E501
_base_ = 'mmdet::deformable_detr/deformable-detr-refine-twostage_r50_16xb2-50e_coco.py'
custom_imports = dict(imports=['mmkdcal'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        depth=18,
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet18')),
    neck=dict(in_channels=[128, 256, 512]))

# Checkpoints: MMDetection's CheckpointHook with atomic saves (mmkdcal's AtomicCheckpointHook: a
# killed or disk-full save keeps the previous checkpoint); the other settings stay the base's.
default_hooks = dict(checkpoint=dict(type='AtomicCheckpointHook'))
