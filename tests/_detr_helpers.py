"""Tiny DETR-family detector configs (64 px inputs, a handful of queries) for CPU tests.

Batch norm runs on its running statistics (``norm_eval``) and dropout is off, so a model in
training mode computes the same function as in eval mode: a student that copies a teacher's
weights predicts exactly what the teacher predicts.
"""
import copy

from _helpers import MEAN, STD


def _backbone(width: int, out_indices) -> dict:
    return dict(type='ResNet', depth=18, base_channels=width, num_stages=4,
                out_indices=out_indices, frozen_stages=-1,
                norm_cfg=dict(type='BN', requires_grad=False), norm_eval=True,
                style='pytorch', init_cfg=None)


def _preprocessor() -> dict:
    return dict(type='DetDataPreprocessor', mean=MEAN, std=STD, bgr_to_rgb=True,
                pad_size_divisor=32)


def _matcher(cls_cost: dict) -> dict:
    return dict(assigner=dict(type='HungarianAssigner', match_costs=[
        cls_cost, dict(type='BBoxL1Cost', weight=5.0, box_format='xywh'),
        dict(type='IoUCost', iou_mode='giou', weight=2.0)]))


def _focal_head(head_type: str, num_classes: int, dims: int) -> dict:
    return dict(type=head_type, num_classes=num_classes, embed_dims=dims,
                sync_cls_avg_factor=False,
                loss_cls=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25,
                              loss_weight=1.0),
                loss_bbox=dict(type='L1Loss', loss_weight=5.0),
                loss_iou=dict(type='GIoULoss', loss_weight=2.0))


def deformable_detr_model(width: int = 8, dims: int = 32, num_queries: int = 8,
                          num_classes: int = 3, dec_layers: int = 2,
                          two_stage: bool = False) -> dict:
    """A tiny Deformable DETR (box refinement; 2 feature levels)."""
    levels = 2
    return dict(
        type='DeformableDETR', num_queries=num_queries, num_feature_levels=levels,
        with_box_refine=True, as_two_stage=two_stage, data_preprocessor=_preprocessor(),
        backbone=_backbone(width, (2, 3)),
        neck=dict(type='ChannelMapper', in_channels=[4 * width, 8 * width], kernel_size=1,
                  out_channels=dims, act_cfg=None, norm_cfg=dict(type='GN', num_groups=8),
                  num_outs=levels),
        encoder=dict(num_layers=1, layer_cfg=dict(
            self_attn_cfg=dict(embed_dims=dims, num_levels=levels, num_heads=4, num_points=2,
                               batch_first=True, dropout=0.0),
            ffn_cfg=dict(embed_dims=dims, feedforward_channels=2 * dims, ffn_drop=0.0))),
        decoder=dict(num_layers=dec_layers, return_intermediate=True, layer_cfg=dict(
            self_attn_cfg=dict(embed_dims=dims, num_heads=4, dropout=0.0, batch_first=True),
            cross_attn_cfg=dict(embed_dims=dims, num_levels=levels, num_heads=4, num_points=2,
                                batch_first=True, dropout=0.0),
            ffn_cfg=dict(embed_dims=dims, feedforward_channels=2 * dims, ffn_drop=0.0)),
            post_norm_cfg=None),
        positional_encoding=dict(num_feats=dims // 2, normalize=True, offset=-0.5),
        bbox_head=_focal_head('DeformableDETRHead', num_classes, dims),
        train_cfg=_matcher(dict(type='FocalLossCost', weight=2.0)),
        test_cfg=dict(max_per_img=num_queries))


def dino_model(width: int = 8, num_queries: int = 8, num_classes: int = 3,
               dec_layers: int = 2) -> dict:
    """A tiny DINO (mmdet's DINO decoder fixes the transformer width at 256)."""
    dims, levels = 256, 2
    return dict(
        type='DINO', num_queries=num_queries, with_box_refine=True, as_two_stage=True,
        num_feature_levels=levels, data_preprocessor=_preprocessor(),
        backbone=_backbone(width, (2, 3)),
        neck=dict(type='ChannelMapper', in_channels=[4 * width, 8 * width], kernel_size=1,
                  out_channels=dims, act_cfg=None, norm_cfg=dict(type='GN', num_groups=32),
                  num_outs=levels),
        encoder=dict(num_layers=1, layer_cfg=dict(
            self_attn_cfg=dict(embed_dims=dims, num_levels=levels, num_heads=8, num_points=2,
                               dropout=0.0),
            ffn_cfg=dict(embed_dims=dims, feedforward_channels=64, ffn_drop=0.0))),
        decoder=dict(num_layers=dec_layers, return_intermediate=True, layer_cfg=dict(
            self_attn_cfg=dict(embed_dims=dims, num_heads=8, dropout=0.0),
            cross_attn_cfg=dict(embed_dims=dims, num_levels=levels, num_heads=8, num_points=2,
                                dropout=0.0),
            ffn_cfg=dict(embed_dims=dims, feedforward_channels=64, ffn_drop=0.0)),
            post_norm_cfg=None),
        positional_encoding=dict(num_feats=dims // 2, normalize=True, offset=0.0,
                                 temperature=20),
        bbox_head=_focal_head('DINOHead', num_classes, dims),
        dn_cfg=dict(label_noise_scale=0.5, box_noise_scale=1.0,
                    group_cfg=dict(dynamic=True, num_groups=None, num_dn_queries=8)),
        train_cfg=_matcher(dict(type='FocalLossCost', weight=2.0)),
        test_cfg=dict(max_per_img=num_queries))


def detr_model(width: int = 8, dims: int = 32, num_queries: int = 8, num_classes: int = 3,
               dec_layers: int = 2, conditional: bool = False) -> dict:
    """A tiny DETR (softmax head with a no-object class), or Conditional DETR (sigmoid; mmdet's
    Conditional DETR decoder fixes the transformer width at 256)."""
    dims = 256 if conditional else dims
    attn = dict(embed_dims=dims, num_heads=4, dropout=0.0, batch_first=True)
    ffn = dict(embed_dims=dims, feedforward_channels=2 * dims, num_fcs=2, ffn_drop=0.0,
               act_cfg=dict(type='ReLU', inplace=True))

    def dec_attn(cross: bool) -> dict:
        if conditional:  # Conditional DETR's own attention (its config's cross_attn flag)
            return dict(embed_dims=dims, num_heads=4, attn_drop=0.0, cross_attn=cross)
        return copy.deepcopy(attn)

    if conditional:
        head = _focal_head('ConditionalDETRHead', num_classes, dims)
        cls_cost = dict(type='FocalLossCost', weight=2.0)
    else:
        head = dict(type='DETRHead', num_classes=num_classes, embed_dims=dims,
                    loss_cls=dict(type='CrossEntropyLoss', bg_cls_weight=0.1,
                                  use_sigmoid=False, loss_weight=1.0, class_weight=1.0),
                    loss_bbox=dict(type='L1Loss', loss_weight=5.0),
                    loss_iou=dict(type='GIoULoss', loss_weight=2.0))
        cls_cost = dict(type='ClassificationCost', weight=1.0)
    return dict(
        type='ConditionalDETR' if conditional else 'DETR', num_queries=num_queries,
        data_preprocessor=_preprocessor(), backbone=_backbone(width, (3, )),
        neck=dict(type='ChannelMapper', in_channels=[8 * width], kernel_size=1,
                  out_channels=dims, act_cfg=None, norm_cfg=None, num_outs=1),
        encoder=dict(num_layers=1, layer_cfg=dict(self_attn_cfg=copy.deepcopy(attn),
                                                  ffn_cfg=copy.deepcopy(ffn))),
        decoder=dict(num_layers=dec_layers, layer_cfg=dict(
            self_attn_cfg=dec_attn(False), cross_attn_cfg=dec_attn(True),
            ffn_cfg=copy.deepcopy(ffn)), return_intermediate=True),
        positional_encoding=dict(num_feats=dims // 2, normalize=True),
        bbox_head=head, train_cfg=_matcher(cls_cost), test_cfg=dict(max_per_img=num_queries))


def distill_type(model_cfg: dict) -> str:
    """The DETR-family distiller registered for a detector config's type."""
    return {'DETR': 'DistillDETR', 'ConditionalDETR': 'DistillConditionalDETR',
            'DeformableDETR': 'DistillDeformableDETR', 'DINO': 'DistillDINO'}[model_cfg['type']]


def detr_distiller(student_cfg: dict, teacher_cfg_path: str, ckpt: str, **kw):
    """Build the DETR-family distiller of ``student_cfg`` with the given teacher, its student
    initialised (``init_weights``): mmdet's Deformable DETR and DINO create their level
    embedding as an uninitialised tensor, which holds whatever memory it reuses (NaN at times)
    until ``init_weights``, as a Runner calls it."""
    from mmdet.registry import MODELS
    cfg = copy.deepcopy(student_cfg)
    cfg['type'] = distill_type(cfg)
    cfg.update(teacher_config=teacher_cfg_path, teacher_ckpt=ckpt, **kw)
    model = MODELS.build(cfg)
    model.init_weights()
    return model
