# A Cascade R-CNN R-101 teacher for a Faster R-CNN R-50 student (one RoI stage) on COCO
# (docs/heterogeneous.md): the teacher's last stage (teacher_roi_stage=2) classifies the RoIs the
# student sampled (softmax KD on the calibrated teacher's logits), and PKD pairs the FPN levels.
#   python tools/train.py configs/hetero/kd-pkd-cal_faster-rcnn_r50_cascade-rcnn-r101_1x_coco.py
_base_ = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['mmkdcal'], allow_failed_imports=False)

# MMDetection model zoo, configs/cascade_rcnn/metafile.yml, cascade-rcnn_r101_fpn_20e_coco
teacher_ckpt = 'https://download.openmmlab.com/mmdetection/v2.0/cascade_rcnn/cascade_rcnn_r101_fpn_20e_coco/cascade_rcnn_r101_fpn_20e_coco_bbox_mAP-0.425_20200504_231812-5057dcc5.pth'  # noqa: E501

model = dict(
    type='DistillFasterRCNN',
    teacher_config='mmdet::cascade_rcnn/cascade-rcnn_r101_fpn_20e_coco.py',
    teacher_ckpt=teacher_ckpt,
    teacher_temperature=None,  # fitted by the hook below (on the teacher's first-stage RoIs)
    teacher_roi_stage=2,
    distill_losses=dict(
        loss_kd_roi=dict(type='KDLoss', inputs='roi_cls', tau=1.0, loss_weight=1.0),
        loss_pkd=dict(type='PKDLoss', inputs='neck', loss_weight=6.0)))
custom_hooks = [dict(type='TeacherCalibrationHook', objective='nll')]

# Checkpoints: atomic saves (a killed or disk-full save keeps the previous checkpoint).
default_hooks = dict(checkpoint=dict(type='AtomicCheckpointHook'))
