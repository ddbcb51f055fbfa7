# configs/demo/retinanet_r18w32_digits.py with a softened focal-loss target: the assigned class of
# a positive anchor is trained towards 0.7 instead of 1 (label smoothing of the positives).
#   python tools/train.py projects/teacher_studies/configs/retinanet_r18w32_soft-focal_digits.py
_base_ = ['../../../configs/demo/retinanet_r18w32_digits.py']

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
            pos_target=0.7,
            loss_weight=1.0)))
