# A dense teacher for a DETR-family student: TOOD X-101-64x4d (ms-2x, box AP 47.6) ->
# Deformable DETR R-50 (50e, box AP 44.3) on COCO (docs/heterogeneous.md, "DETR-family
# students"). The student's Hungarian assigner matches the teacher's calibrated detections to the
# queries of its last decoder layer, as it matches the ground truth:
# - PKD on the levels paired by stride: the ChannelMapper's 8-64 (backbone out_indices 1-3 plus
#   one extra level) against the teacher's FPN 8-128, four pairs, both 256 wide: no adapter;
# - the matched queries' class logits against the detections' calibrated scores (sigmoid head:
#   BinaryKDLoss, unmatched queries against background) and their boxes against the detections'.
# Loss weights follow the student's own: Deformable DETR weighs its focal class loss 2.0 and its
# GIoU loss 2.0 (its L1 loss, 5.0, is on normalised cxcywh boxes), so the class KD has weight 2.0
# and the box KD GIoU 2.0 with no L1 term ('pred_box' boxes are xyxy in input pixels, where an L1
# term would be on another scale than the student's own).
#   python tools/train.py configs/hetero/pkd-pred-cal_deformable-detr_r50_tood-x101_50e_coco.py
_base_ = 'mmdet::deformable_detr/deformable-detr_r50_16xb2-50e_coco.py'
custom_imports = dict(imports=['mmkdcal'], allow_failed_imports=False)

# MMDetection model zoo, configs/tood/metafile.yml, tood_x101-64x4d_fpn_ms-2x_coco (box AP 47.6)
teacher_ckpt = 'https://download.openmmlab.com/mmdetection/v2.0/tood/tood_x101_64x4d_fpn_mstrain_2x_coco/tood_x101_64x4d_fpn_mstrain_2x_coco_20211211_003519-a4f36113.pth'  # noqa: E501

model = dict(
    type='DistillDeformableDETR',
    teacher_config='mmdet::tood/tood_x101-64x4d_fpn_ms-2x_coco.py',
    teacher_ckpt=teacher_ckpt,
    teacher_temperature=None,  # fitted on the teacher's detections by the hook below
    distill_losses=dict(
        loss_pkd=dict(type='PKDLoss', inputs='neck', loss_weight=6.0),
        loss_pred_cls=dict(type='BinaryKDLoss', inputs='pred_cls', beta=2.0, loss_weight=2.0),
        loss_pred_box=dict(type='BoxKDLoss', inputs='pred_box', l1_weight=0.0,
                           giou_weight=2.0, loss_weight=1.0)))
custom_hooks = [dict(type='TeacherCalibrationHook', objective='nll', fit_on='detections')]

# Checkpoints: atomic saves (a killed or disk-full save keeps the previous checkpoint).
default_hooks = dict(checkpoint=dict(type='AtomicCheckpointHook'))
