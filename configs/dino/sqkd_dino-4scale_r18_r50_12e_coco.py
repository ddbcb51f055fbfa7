# DETR-family KD from an *uncalibrated* teacher: DINO-4scale R-50 -> R-18 on COCO (12e), query
# alignment 'shared_queries'. The baseline of sqkd-cal_dino-4scale_r18_r50_12e_coco.py, which
# differs only in the teacher's calibration temperature (fitted there, fixed to 1.0 here).
#   python tools/train.py configs/dino/sqkd_dino-4scale_r18_r50_12e_coco.py
# The student is dino-4scale_r18_8xb2-12e_coco.py of this folder (the stock R-50 config with a
# ResNet-18); only the model type, the teacher and the distillation losses are added.
_base_ = './dino-4scale_r18_8xb2-12e_coco.py'

# Teacher weights: MMDetection model zoo, configs/dino/metafile.yml, dino-4scale_r50_8xb2-12e_coco
# (box AP 49.0). Use a local copy with --cfg-options model.teacher_ckpt=/path/to/teacher.pth
teacher_ckpt = 'https://download.openmmlab.com/mmdetection/v3.0/dino/dino-4scale_r50_8xb2-12e_coco/dino-4scale_r50_8xb2-12e_coco_20221202_182705-55b2bba2.pth'  # noqa: E501

model = dict(
    type='DistillDINO',
    teacher_config='mmdet::dino/dino-4scale_r50_8xb2-12e_coco.py',
    teacher_ckpt=teacher_ckpt,
    teacher_temperature=1.0,  # 1.0: distil from the uncalibrated teacher
    teacher_inference=dict(fuse_conv_bn=True, channels_last=False, precision='fp32'),
    # Consistent distillation points (KD-DETR, Wang et al., CVPR 2024, arXiv 2211.08071): the
    # teacher's decoder queries and reference points go through the student decoder as well, and
    # the outputs are compared query by query (no matching).
    query_alignment='shared_queries',
    distill_losses=dict(
        # per-class sigmoid KD of the aligned queries of every decoder layer, weighted by
        # |p_t - p_s| as in BCKD (Yang et al., ICCV 2023: beta=1), divided by the teacher's soft
        # object count
        loss_kd=dict(type='BinaryKDLoss', inputs='logits', tau=1.0, beta=1.0, loss_weight=1.0),
        # box KD against the aligned teacher boxes with the student's own box-loss weights
        # (L1 5, GIoU 2), each pair weighted by the teacher's confidence
        loss_kd_box=dict(type='BoxKDLoss', inputs='boxes', l1_weight=5.0, giou_weight=2.0,
                         loss_weight=1.0)))

# Validation reports the student's COCO bbox mAP and its detection calibration error (D-ECE of the
# detections scoring >= 0.3, matched at IoU 0.5).
val_evaluator = [
    {{_base_.val_evaluator}},
    dict(type='DetectionCalibrationMetric', score_thr=0.3, iou_thr=0.5),
]
test_evaluator = val_evaluator
