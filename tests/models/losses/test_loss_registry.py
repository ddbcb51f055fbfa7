"""The distillation losses are built from configs through MMDetection's MODELS registry."""
import pytest
import torch
from mmdet.registry import MODELS

import mmkdcal.models.losses as losses


@pytest.mark.parametrize('cfg', [
    dict(type='KDLoss', tau=2.0),
    dict(type='BinaryKDLoss', beta=2.0),
    dict(type='DKDLoss', warmup_iters=5),
    dict(type='MLKDLoss', min_teacher_conf=0.5),
    dict(type='BoxKDLoss', giou_weight=2.0),
    dict(type='LDLoss', reg_max=16),
    dict(type='FeatureMSELoss', student_channels=8, teacher_channels=16),
    dict(type='PKDLoss'),
    dict(type='CWDLoss', tau=4.0),
])
def test_build_from_config(cfg):
    loss = MODELS.build(dict(cfg))
    assert type(loss) is getattr(losses, cfg['type'])
    assert isinstance(loss, torch.nn.Module)
