# Student baseline (no distillation): Conditional DETR with a ResNet-18 backbone, COCO, 50e
# schedule. MMDetection's model zoo has no published ResNet-18 Conditional DETR, so this config
# trains the reference that the R-18 distillation configs of this folder are compared with.
# Everything except the backbone depth, its ImageNet weights and the neck input widths is the stock
# conditional-detr_r50_8xb2-50e_coco.py.
#   python tools/train.py configs/conditional_detr/conditional-detr_r18_8xb2-50e_coco.py
_base_ = 'mmdet::conditional_detr/conditional-detr_r50_8xb2-50e_coco.py'
custom_imports = dict(imports=['mmkdcal'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        depth=18,
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet18')),
    neck=dict(in_channels=[512]))

# Checkpoints: MMDetection's CheckpointHook with atomic saves (mmkdcal's AtomicCheckpointHook: a
# killed or disk-full save keeps the previous checkpoint); the other settings stay the base's.
default_hooks = dict(checkpoint=dict(type='AtomicCheckpointHook'))
