"""MMDetection's own configs of many detector families, shrunk to CPU test size.

Each family's stock ``mmdet::`` config is read and only sizes change (backbone width, channels,
tower depth, classes), so the heads, assigners, losses and detector classes are the real ones.
"""
import copy
import inspect
import os.path as osp
from typing import Any, Dict

import mmdet
from mmdet.registry import MODELS
from mmengine.config import Config

MMDET_CONFIGS = osp.join(osp.dirname(mmdet.__file__), '.mim', 'configs')
NUM_CLASSES = 3
WIDTH = 16

#: family -> stock config (relative to mmdet's configs).
FAMILIES: Dict[str, str] = {
    'gfl': 'gfl/gfl_r50_fpn_1x_coco.py',
    'retinanet': 'retinanet/retinanet_r50_fpn_1x_coco.py',
    'atss': 'atss/atss_r50_fpn_1x_coco.py',
    'fcos': 'fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py',
    'paa': 'paa/paa_r50_fpn_1x_coco.py',
    'ddod': 'ddod/ddod_r50_fpn_1x_coco.py',
    'tood': 'tood/tood_r50_fpn_1x_coco.py',
    'vfnet': 'vfnet/vfnet_r50_fpn_1x_coco.py',
    'rtmdet': 'rtmdet/rtmdet_tiny_8xb32-300e_coco.py',
    'yolox': 'yolox/yolox_tiny_8xb8-300e_coco.py',
    'centernet': 'centernet/centernet_r18_8xb16-crop512-140e_coco.py',
    'retina_sepbn': 'nas_fpn/retinanet_r50_fpn_crop640-50e_coco.py',
    'fsaf': 'fsaf/fsaf_r50_fpn_1x_coco.py',
    'fovea': 'foveabox/fovea_r50_fpn_4xb4-1x_coco.py',
    'free_anchor': 'free_anchor/freeanchor_r50_fpn_1x_coco.py',
    'nas_fcos': 'nas_fcos/nas-fcos_r50-caffe_fpn_nashead-gn-head_4xb4-1x_coco.py',
    'autoassign': 'autoassign/autoassign_r50-caffe_fpn_1x_coco.py',
    'centernet_update': 'centernet/centernet-update_r50-caffe_fpn_ms-1x_coco.py',
    'yolof': 'yolof/yolof_r50-c5_8xb8-1x_coco.py',
    'reppoints': 'reppoints/reppoints-moment_r50_fpn_1x_coco.py',
    'faster_rcnn': 'faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py',
    'mask_rcnn': 'mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py',
    'cascade_rcnn': 'cascade_rcnn/cascade-rcnn_r50_fpn_1x_coco.py',
    'cascade_mask_rcnn': 'cascade_rcnn/cascade-mask-rcnn_r50_fpn_1x_coco.py',
    # single-stage instance segmentors: their box head is distilled (YOLACT made sigmoid)
    'rtmdet_ins': 'rtmdet/rtmdet-ins_tiny_8xb32-300e_coco.py',
    'condinst': 'condinst/condinst_r50_fpn_ms-poly-90k_coco_instance.py',
    'boxinst': 'boxinst/boxinst_r50_fpn_ms-90k_coco.py',
    'yolact': 'yolact/yolact_r50_1xb8-55e_coco.py',
}
TWO_STAGE = {'faster_rcnn', 'mask_rcnn', 'cascade_rcnn', 'cascade_mask_rcnn'}
WITH_MASK = {'mask_rcnn', 'cascade_mask_rcnn', 'rtmdet_ins', 'condinst', 'boxinst', 'yolact'}


def _walk(obj: Any) -> Any:
    """Shrink every head-like dict: classes, channels, tower depth; BN for SyncBN; GN groups."""
    if isinstance(obj, list):
        return [_walk(v) for v in obj]
    if not isinstance(obj, dict):
        return obj
    out = {k: _walk(v) for k, v in obj.items()}
    if 'num_classes' in out:
        out['num_classes'] = NUM_CLASSES
    for key in ('in_channels', 'feat_channels', 'out_channels', 'conv_out_channels'):
        if isinstance(out.get(key), int):
            out[key] = WIDTH
    if isinstance(out.get('fc_out_channels'), int):
        out['fc_out_channels'] = 2 * WIDTH
    if isinstance(out.get('stacked_convs'), int):
        out['stacked_convs'] = 1
    if isinstance(out.get('num_convs'), int) and out.get('type', '').endswith('MaskHead'):
        out['num_convs'] = 1
    if out.get('type') == 'SyncBN':
        out['type'] = 'BN'
    if out.get('type') == 'GN':
        out['num_groups'] = 4
    if out.get('type') == 'RandomSampler' and 'num' in out:
        out['num'] = 64
    for key in ('nms_pre', 'max_per_img'):
        if isinstance(out.get(key), int):
            out[key] = min(out[key], 100)
    return out


def tiny_model(family: str) -> Dict[str, Any]:
    """The family's stock model config at test size (``NUM_CLASSES`` classes, ``WIDTH``
    channels, 64-128 px inputs), with ``init_cfg`` off (nothing is downloaded)."""
    model = Config.fromfile(osp.join(MMDET_CONFIGS, FAMILIES[family])).model.to_dict()
    backbone, neck = model.pop('backbone'), model.pop('neck')
    head = model.get('bbox_head')
    if head is not None and 'norm_cfg' not in head:  # the head's own default, e.g. GN(32)
        for klass in MODELS.get(head['type']).__mro__:
            default = inspect.signature(klass.__init__).parameters.get('norm_cfg')
            if default is not None and isinstance(default.default, dict):
                head['norm_cfg'] = dict(default.default)
                break
    model = _walk(model)
    if family == 'condinst':  # the dynamic mask convs keep the widths its num_params (169) fits
        model['mask_head'].update(feat_channels=8)
        model['mask_head']['mask_feature_head']['out_channels'] = 8
    if family == 'yolact':  # sigmoid class scores (stock: a softmax with OHEM)
        model['bbox_head'].update(use_ohem=False, loss_cls=dict(
            type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.0))
    pre = model['data_preprocessor']
    pre.pop('batch_augments', None)  # YOLOX's random resizing changes the input size
    if backbone['type'] == 'ResNet':
        outs = backbone.get('out_indices', (0, 1, 2, 3))
        backbone.update(depth=18, base_channels=8, init_cfg=None, frozen_stages=-1,
                        norm_eval=False, norm_cfg=dict(type='BN', requires_grad=True),
                        out_indices=outs)
        backbone.pop('dcn', None)
        backbone.pop('stage_with_dcn', None)
        widths = [8 * 2**i for i in range(4)]
        if neck['type'] == 'CTResNetNeck':
            neck.update(in_channels=widths[-1], num_deconv_filters=(WIDTH, WIDTH, WIDTH))
        elif neck['type'] == 'DilatedEncoder':  # YOLOF: one C5 level
            neck.update(in_channels=widths[-1], out_channels=WIDTH, block_mid_channels=WIDTH,
                        num_residual_blocks=1, block_dilations=[2])
        else:
            neck.update(in_channels=[widths[i] for i in outs], out_channels=WIDTH)
    else:  # CSPNeXt (RTMDet), CSPDarknet (YOLOX): P5 widths 256, 512, 1024 at full width
        backbone.update(widen_factor=0.125, deepen_factor=0.167, init_cfg=None,
                        norm_cfg=dict(type='BN'))
        neck.update(in_channels=[32, 64, 128], out_channels=WIDTH, num_csp_blocks=1,
                    norm_cfg=dict(type='BN'))
    model.update(backbone=backbone, neck=neck)
    return copy.deepcopy(model)


def input_size(family: str) -> int:
    """Image size for the family (FPNs to P7 need 128 px; DDOD's deformable head conv needs
    its P7 map larger than 1 x 1)."""
    return {'rtmdet': 64, 'rtmdet_ins': 64, 'yolox': 64, 'centernet': 64,
            'ddod': 384}.get(family, 128)


def family_test_pipeline(family: str):
    """The family's own test pipeline where the generic one does not fit (CenterNet's predict
    needs the ``border`` its RandomCenterCropPad records), else None."""
    if family != 'centernet':
        return None
    return Config.fromfile(osp.join(MMDET_CONFIGS, FAMILIES[family])).test_pipeline
