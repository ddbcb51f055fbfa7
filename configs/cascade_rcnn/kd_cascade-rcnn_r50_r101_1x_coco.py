# RoI-level softmax KD at every stage: Cascade R-CNN R-101 (20e) ->
# Cascade R-CNN R-50 (1x), COCO, from an *uncalibrated* teacher. The baseline of
# kd-cal_cascade-rcnn_r50_r101_1x_coco.py,
# which differs only in the teacher's calibration temperature (fitted there, 1.0 here).
#   python tools/train.py configs/cascade_rcnn/kd_cascade-rcnn_r50_r101_1x_coco.py
# The student is the stock MMDetection config (backbone, RPN, RoI head, data, 1x
# schedule, 8 GPUs x 2 images), trained through MMDetection's own loss code; only the model type,
# the teacher and the distillation losses are added. As in mdistiller's detection KD, the
# teacher's RoI head classifies the student's sampled RoIs (on the teacher's own FPN features).
_base_ = 'mmdet::cascade_rcnn/cascade-rcnn_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['mmkdcal'], allow_failed_imports=False)

# Teacher weights: MMDetection model zoo, configs/cascade_rcnn/metafile.yml,
# cascade-rcnn_r101_fpn_20e_coco (box AP 42.5). Use a local copy with
# --cfg-options model.teacher_ckpt=/path/to/teacher.pth
teacher_ckpt = 'https://download.openmmlab.com/mmdetection/v2.0/cascade_rcnn/cascade_rcnn_r101_fpn_20e_coco/cascade_rcnn_r101_fpn_20e_coco_bbox_mAP-0.425_20200504_231812-5057dcc5.pth'  # noqa: E501

model = dict(
    type='DistillCascadeRCNN',  # the distiller is a CascadeRCNN (isinstance holds)
    teacher_config='mmdet::cascade_rcnn/cascade-rcnn_r101_fpn_20e_coco.py',
    teacher_ckpt=teacher_ckpt,
    teacher_temperature=1.0,  # 1.0: distil from the uncalibrated teacher
    teacher_inference=dict(fuse_conv_bn=True, channels_last=False, precision='fp32'),
    distill_losses=dict(
        # Hinton KD on the sampled RoIs' K+1 softmax logits, averaged over RoIs, tau 1.0 and
        # weight 1.0 as the Faster R-CNN configs (mdistiller's RoI-level detection KD).
        # Every cascade stage is distilled (model.roi_stages=None; e.g. roi_stages=[2] for the
        # last only), the teacher's head of the same stage classifying the student's RoIs
        # of that stage; the terms are weighted by the stages' loss weights (1, 0.5, 0.25).
        loss_kd_roi=dict(type='KDLoss', inputs='roi_cls', tau=1.0, loss_weight=1.0)))

# Validation reports the student's COCO bbox mAP and its detection calibration
# error (D-ECE of the detections scoring >= 0.3, matched at IoU 0.5).
val_evaluator = [
    {{_base_.val_evaluator}},
    dict(type='DetectionCalibrationMetric', score_thr=0.3, iou_thr=0.5),
]
test_evaluator = val_evaluator

# Checkpoints: MMDetection's CheckpointHook with atomic saves (mmkdcal's AtomicCheckpointHook: a
# killed or disk-full save keeps the previous checkpoint); the other settings stay the base's.
default_hooks = dict(checkpoint=dict(type='AtomicCheckpointHook'))
