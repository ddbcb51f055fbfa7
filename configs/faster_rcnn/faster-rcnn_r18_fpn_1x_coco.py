# Student baseline (no distillation): Faster R-CNN with a ResNet-18 FPN backbone, 1x schedule,
# COCO. MMDetection's model zoo has no published 1x ResNet-18 Faster R-CNN, so this config trains
# the reference that the R-18 distillation configs (kd_faster-rcnn_r18_r101_1x_coco.py, ...)
# are compared with. Everything except the backbone depth and the FPN input widths is the stock
# faster-rcnn_r50_fpn_1x_coco.py.
#   python tools/train.py configs/faster_rcnn/faster-rcnn_r18_fpn_1x_coco.py
_base_ = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['mmkdcal'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        depth=18,
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet18')),
    neck=dict(in_channels=[64, 128, 256, 512]))

# Checkpoints: MMDetection's CheckpointHook with atomic saves (mmkdcal's AtomicCheckpointHook: a
# killed or disk-full save keeps the previous checkpoint); the other settings stay the base's.
default_hooks = dict(checkpoint=dict(type='AtomicCheckpointHook'))
