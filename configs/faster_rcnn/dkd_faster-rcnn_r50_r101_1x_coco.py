# RoI-level decoupled KD (DKD) from an *uncalibrated* teacher: Faster R-CNN R-101 (ms-3x) ->
# Faster R-CNN R-50 (1x) on COCO. The baseline of dkd-cal_faster-rcnn_r50_r101_1x_coco.py.
#   python tools/train.py configs/faster_rcnn/dkd_faster-rcnn_r50_r101_1x_coco.py
_base_ = './kd_faster-rcnn_r50_r101_1x_coco.py'

model = dict(
    distill_losses=dict(
        _delete_=True,
        # DKD (Zhao et al., CVPR 2022, arXiv 2203.08679) on the sampled RoIs' K+1 logits with
        # their assigned labels (background = K): alpha 1.0, beta 0.25, tau 1.0, no warm-up,
        # as mdistiller's COCO detection setting (detection/model/config.py, KD.DKD).
        loss_dkd_roi=dict(
            type='DKDLoss', inputs='roi_cls', alpha=1.0, beta=0.25, tau=1.0,
            loss_weight=1.0)))
