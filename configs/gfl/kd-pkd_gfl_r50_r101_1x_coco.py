# Binary KD (as kd_gfl_r50_r101_1x_coco.py) plus PKD feature distillation on the five FPN levels,
# from the *uncalibrated* teacher. The baseline of kd-cal-pkd_gfl_r50_r101_1x_coco.py.
#   python tools/train.py configs/gfl/kd-pkd_gfl_r50_r101_1x_coco.py
_base_ = './kd_gfl_r50_r101_1x_coco.py'

model = dict(
    distill_losses=dict(
        # PKD (Cao et al., NeurIPS 2022, arXiv 2207.02039): Pearson-correlation imitation of the
        # FPN outputs. loss_weight 10 per level as MMRazor's PKD RetinaNet X-101 -> R-50 config
        # (pkd_fpn_retina_x101_retina_r50_2x_coco.py), the dense-detector setting; MMRazor
        # distils 4 of the 5 levels, this distiller sums all 5 (P3-P7).
        loss_pkd=dict(type='PKDLoss', inputs='neck', loss_weight=10.0)))
