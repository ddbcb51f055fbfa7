# configs/demo/gfl_r18w32_digits.py with the focal loss (hard 0/1 targets) instead of the quality
# focal loss (IoU targets) on its class scores: `SoftTargetFocalLoss` with pos_target=1.0 is
# mmdet's FocalLoss, reading GFLHead's (labels, IoU) targets and ignoring the IoU.
#   python tools/train.py projects/teacher_studies/configs/gfl_r18w32_focal_digits.py
_base_ = ['../../../configs/demo/gfl_r18w32_digits.py']

custom_imports = dict(imports=[
    'mmkdcal', 'projects.teacher_studies.studies.soft_target_focal_loss'],
                      allow_failed_imports=False)
model = dict(
    bbox_head=dict(
        loss_cls=dict(
            _delete_=True,
            type='SoftTargetFocalLoss',
            use_sigmoid=True,
            gamma=2.0,
            alpha=0.25,
            pos_target=1.0,
            loss_weight=1.0)))
