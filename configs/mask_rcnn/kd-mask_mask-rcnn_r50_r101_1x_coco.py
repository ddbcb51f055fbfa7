# RoI-level softmax KD + mask-logit KD from an *uncalibrated* teacher: Mask R-CNN R-101
# (ms-poly-3x) -> Mask R-CNN R-50 (1x), COCO: kd_mask-rcnn_r50_r101_1x_coco.py plus KD on the
# positive RoIs' mask logits. The baseline of kd-cal-mask_mask-rcnn_r50_r101_1x_coco.py, which
# differs only in the teacher's calibration temperature (fitted there, 1.0 here).
#   python tools/train.py configs/mask_rcnn/kd-mask_mask-rcnn_r50_r101_1x_coco.py
_base_ = './kd_mask-rcnn_r50_r101_1x_coco.py'

model = dict(
    distill_losses=dict(
        # Mask-logit KD on the positive RoIs: BCE(s, sigmoid(t)) * |sigmoid(t) - sigmoid(s)| per
        # mask pixel at the RoI's ground-truth class, averaged over the P x 28 x 28 pixels (the
        # mask loss's own normalisation), weight 1.0. Mask logits are not temperature-scaled:
        # the calibration temperature belongs to the classification head.
        loss_kd_mask=dict(
            type='BinaryKDLoss', inputs='roi_mask', tau=1.0, beta=1.0, loss_weight=1.0)))
