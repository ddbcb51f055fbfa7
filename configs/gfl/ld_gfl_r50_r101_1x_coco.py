# Binary KD on the class logits (as kd_gfl_r50_r101_1x_coco.py) plus localization distillation
# (LD) on GFL's box-edge distributions, from the *uncalibrated* teacher. The baseline of
# ld-cal_gfl_r50_r101_1x_coco.py.
#   python tools/train.py configs/gfl/ld_gfl_r50_r101_1x_coco.py
# Same teacher and student as MMDetection's configs/ld/ld_r50-gflv1-r101_fpn_1x_coco.py. There,
# LD covers the positive locations only, weighted by the student's max class score; here it
# covers every location, weighted by the teacher's max class probability and divided by the
# teacher's soft foreground count (the distiller's 'reg' input).
_base_ = './kd_gfl_r50_r101_1x_coco.py'

model = dict(
    distill_losses=dict(
        # LD (Zheng et al., CVPR 2022, arXiv 2102.12252): tau 10, loss_weight 0.25, as the
        # authors' and MMDetection's LD configs (KnowledgeDistillationKLDivLoss, T=10,
        # loss_weight=0.25).
        loss_ld=dict(type='LDLoss', inputs='reg', tau=10.0, loss_weight=0.25)))
