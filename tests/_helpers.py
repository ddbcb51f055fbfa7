"""Tiny COCO-format data and tiny detector configs for the end-to-end tests.

The data has real signal (each class is a filled shape of its own colour on a noisy background),
so a few iterations move the losses, but it is small enough for CPU tests.
"""
import json
import os
import os.path as osp
import pickle
import subprocess
import sys
from typing import Any, Dict, List, Optional

import numpy as np
import torch
from PIL import Image

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CLASSES = ('red', 'green', 'blue')
COLOURS = ((220, 40, 40), (40, 200, 40), (40, 40, 230))
MEAN = [123.675, 116.28, 103.53]
STD = [58.395, 57.12, 57.375]


def write_coco(root: str, n_images: int = 8, size: int = 64, seed: int = 0) -> Dict[str, str]:
    """Write ``root/images/*.png`` and ``root/ann.json`` (1-3 filled boxes per image; each
    object's mask is its box, given as a polygon)."""
    rng = np.random.default_rng(seed)
    os.makedirs(osp.join(root, 'images'), exist_ok=True)
    images, annotations = [], []
    for i in range(n_images):
        img = rng.integers(80, 140, size=(size, size, 3)).astype(np.uint8)
        for _ in range(int(rng.integers(1, 4))):
            c = int(rng.integers(0, len(CLASSES)))
            w, h = (int(v) for v in rng.integers(size // 5, size // 2, size=2))
            x, y = int(rng.integers(0, size - w)), int(rng.integers(0, size - h))
            img[y:y + h, x:x + w] = COLOURS[c]
            annotations.append(dict(id=len(annotations) + 1, image_id=i + 1, category_id=c + 1,
                                    bbox=[x, y, w, h], area=w * h, iscrowd=0,
                                    segmentation=[[x, y, x + w, y, x + w, y + h, x, y + h]]))
        name = f'{i:04d}.png'
        Image.fromarray(img).save(osp.join(root, 'images', name))
        images.append(dict(id=i + 1, file_name=name, width=size, height=size))
    categories = [dict(id=i + 1, name=n) for i, n in enumerate(CLASSES)]
    ann = osp.join(root, 'ann.json')
    with open(ann, 'w') as f:
        json.dump(dict(images=images, annotations=annotations, categories=categories), f)
    return dict(root=root, ann='ann.json', img='images/')


def _dataloader(data: Dict[str, str], train: bool, batch_size: int = 2, size: int = 64,
                with_mask: bool = False) -> dict:
    pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='LoadAnnotations', with_bbox=True, with_mask=with_mask),
        dict(type='Resize', scale=(size, size), keep_ratio=True),
        dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                                              'scale_factor')),
    ]
    return dict(
        batch_size=batch_size, num_workers=0, persistent_workers=False,
        sampler=dict(type='DefaultSampler', shuffle=train),
        **(dict(batch_sampler=dict(type='AspectRatioBatchSampler')) if train else {}),
        dataset=dict(type='CocoDataset', data_root=data['root'], ann_file=data['ann'],
                     data_prefix=dict(img=data['img']), metainfo=dict(classes=CLASSES),
                     filter_cfg=dict(filter_empty_gt=False), pipeline=pipeline,
                     test_mode=not train))


def _backbone(width: int) -> dict:
    return dict(type='ResNet', depth=18, base_channels=width, num_stages=4, out_indices=(1, 2, 3),
                frozen_stages=-1, norm_cfg=dict(type='BN', requires_grad=True), norm_eval=False,
                style='pytorch', init_cfg=None)


def _preprocessor() -> dict:
    return dict(type='DetDataPreprocessor', mean=MEAN, std=STD, bgr_to_rgb=True,
                pad_size_divisor=32)


def retinanet_model(width: int = 8, num_classes: int = 3, strides=(8, 16, 32)) -> dict:
    """A tiny RetinaNet (ResNet-18 layout with ``base_channels=width``)."""
    return dict(
        type='RetinaNet', data_preprocessor=_preprocessor(), backbone=_backbone(width),
        neck=dict(type='FPN', in_channels=[2 * width, 4 * width, 8 * width], out_channels=16,
                  start_level=0, add_extra_convs='on_input', num_outs=len(strides)),
        bbox_head=dict(
            type='RetinaHead', num_classes=num_classes, in_channels=16, stacked_convs=1,
            feat_channels=16,
            anchor_generator=dict(type='AnchorGenerator', octave_base_scale=4,
                                  scales_per_octave=2, ratios=[0.5, 1.0, 2.0],
                                  strides=list(strides)),
            bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[.0, .0, .0, .0],
                            target_stds=[1.0, 1.0, 1.0, 1.0]),
            loss_cls=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25,
                          loss_weight=1.0),
            loss_bbox=dict(type='L1Loss', loss_weight=1.0)),
        train_cfg=dict(assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.4,
                                     min_pos_iou=0, ignore_iof_thr=-1),
                       sampler=dict(type='PseudoSampler'), allowed_border=-1, pos_weight=-1,
                       debug=False),
        test_cfg=dict(nms_pre=200, min_bbox_size=0, score_thr=0.0,
                      nms=dict(type='nms', iou_threshold=0.5), max_per_img=50))


def gfl_model(width: int = 8, num_classes: int = 3, stacked_convs: int = 1) -> dict:
    """A tiny GFL detector."""
    return dict(
        type='GFL', data_preprocessor=_preprocessor(), backbone=_backbone(width),
        neck=dict(type='FPN', in_channels=[2 * width, 4 * width, 8 * width], out_channels=16,
                  start_level=0, add_extra_convs='on_output', num_outs=3),
        bbox_head=dict(
            type='GFLHead', num_classes=num_classes, in_channels=16, stacked_convs=stacked_convs,
            feat_channels=16, norm_cfg=dict(type='GN', num_groups=4, requires_grad=True),
            anchor_generator=dict(type='AnchorGenerator', ratios=[1.0], octave_base_scale=4,
                                  scales_per_octave=1, strides=[8, 16, 32]),
            loss_cls=dict(type='QualityFocalLoss', use_sigmoid=True, beta=2.0, loss_weight=1.0),
            loss_dfl=dict(type='DistributionFocalLoss', loss_weight=0.25),
            reg_max=8, loss_bbox=dict(type='GIoULoss', loss_weight=2.0)),
        train_cfg=dict(assigner=dict(type='ATSSAssigner', topk=9), allowed_border=-1,
                       pos_weight=-1, debug=False),
        test_cfg=dict(nms_pre=200, min_bbox_size=0, score_thr=0.0,
                      nms=dict(type='nms', iou_threshold=0.6), max_per_img=50))


def faster_rcnn_model(width: int = 8, num_classes: int = 3) -> dict:
    """A tiny Faster R-CNN."""
    return dict(
        type='FasterRCNN', data_preprocessor=_preprocessor(), backbone=_backbone(width),
        neck=dict(type='FPN', in_channels=[2 * width, 4 * width, 8 * width], out_channels=16,
                  num_outs=3),
        rpn_head=dict(
            type='RPNHead', in_channels=16, feat_channels=16,
            anchor_generator=dict(type='AnchorGenerator', scales=[4], ratios=[0.5, 1.0, 2.0],
                                  strides=[8, 16, 32]),
            bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[.0, .0, .0, .0],
                            target_stds=[1.0, 1.0, 1.0, 1.0]),
            loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0),
            loss_bbox=dict(type='L1Loss', loss_weight=1.0)),
        roi_head=dict(
            type='StandardRoIHead',
            bbox_roi_extractor=dict(type='SingleRoIExtractor',
                                    roi_layer=dict(type='RoIAlign', output_size=7,
                                                   sampling_ratio=0),
                                    out_channels=16, featmap_strides=[8, 16, 32]),
            bbox_head=dict(type='Shared2FCBBoxHead', in_channels=16, fc_out_channels=32,
                           roi_feat_size=7, num_classes=num_classes,
                           bbox_coder=dict(type='DeltaXYWHBBoxCoder',
                                           target_means=[0., 0., 0., 0.],
                                           target_stds=[0.1, 0.1, 0.2, 0.2]),
                           reg_class_agnostic=False,
                           loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False,
                                         loss_weight=1.0),
                           loss_bbox=dict(type='L1Loss', loss_weight=1.0))),
        train_cfg=dict(
            rpn=dict(assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.7, neg_iou_thr=0.3,
                                   min_pos_iou=0.3, match_low_quality=True, ignore_iof_thr=-1),
                     sampler=dict(type='RandomSampler', num=64, pos_fraction=0.5,
                                  neg_pos_ub=-1, add_gt_as_proposals=False),
                     allowed_border=-1, pos_weight=-1, debug=False),
            rpn_proposal=dict(nms_pre=200, max_per_img=100,
                              nms=dict(type='nms', iou_threshold=0.7), min_bbox_size=0),
            rcnn=dict(assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.5,
                                    min_pos_iou=0.5, match_low_quality=False, ignore_iof_thr=-1),
                      sampler=dict(type='RandomSampler', num=64, pos_fraction=0.25,
                                   neg_pos_ub=-1, add_gt_as_proposals=True),
                      pos_weight=-1, debug=False)),
        test_cfg=dict(
            rpn=dict(nms_pre=200, max_per_img=100, nms=dict(type='nms', iou_threshold=0.7),
                     min_bbox_size=0),
            rcnn=dict(score_thr=0.0, nms=dict(type='nms', iou_threshold=0.5),
                      max_per_img=50)))


def train_config(model: dict, data: Dict[str, str], max_iters: int = 4,
                 checkpoint_interval: Optional[int] = None, lr: float = 0.01,
                 custom_hooks: Optional[List[dict]] = None, size: int = 64,
                 with_mask: bool = False) -> dict:
    """A complete runnable config dict (iteration-based, CocoMetric validation at the end)."""
    ann = osp.join(data['root'], data['ann'])
    cfg = dict(
        default_scope='mmdet',
        custom_imports=dict(imports=['mmkdcal'], allow_failed_imports=False),
        model=model,
        train_dataloader=_dataloader(data, True, size=size, with_mask=with_mask),
        val_dataloader=_dataloader(data, False, size=size),
        test_dataloader=_dataloader(data, False, size=size),
        val_evaluator=dict(type='CocoMetric', ann_file=ann, metric='bbox', format_only=False),
        test_evaluator=dict(type='CocoMetric', ann_file=ann, metric='bbox', format_only=False),
        train_cfg=dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters),
        val_cfg=dict(type='ValLoop'),
        test_cfg=dict(type='TestLoop'),
        optim_wrapper=dict(type='OptimWrapper',
                           optimizer=dict(type='SGD', lr=lr, momentum=0.9, weight_decay=1e-4),
                           clip_grad=dict(max_norm=10.0)),
        param_scheduler=[dict(type='ConstantLR', factor=1.0, by_epoch=False)],
        default_hooks=dict(
            timer=dict(type='IterTimerHook'),
            logger=dict(type='LoggerHook', interval=1),
            param_scheduler=dict(type='ParamSchedulerHook'),
            checkpoint=dict(type='CheckpointHook', by_epoch=False,
                            interval=checkpoint_interval or max_iters),
            sampler_seed=dict(type='DistSamplerSeedHook')),
        env_cfg=dict(cudnn_benchmark=False, mp_cfg=dict(mp_start_method='fork'),
                     dist_cfg=dict(backend='nccl')),
        log_processor=dict(type='LogProcessor', window_size=1, by_epoch=False),
        log_level='INFO',
        load_from=None,
        resume=False,
        randomness=dict(seed=0),
    )
    if custom_hooks:
        cfg['custom_hooks'] = custom_hooks
    return cfg


def dump_config(cfg: dict, path: str) -> str:
    """Write a config dict as an MMEngine ``.py`` config file."""
    from mmengine.config import Config
    Config(cfg).dump(path)
    return path


def run_tool(*args: str, timeout: int = 300, env: Optional[dict] = None) -> str:
    """Run ``python tools/<script> ...`` from the repo root; return its output, fail loudly."""
    full_env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS='1')
    full_env.update(env or {})
    proc = subprocess.run([sys.executable, *args], cwd=ROOT, env=full_env, timeout=timeout,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        raise AssertionError(f'{" ".join(args)} failed ({proc.returncode}):\n{proc.stdout[-6000:]}')
    return proc.stdout


def last_checkpoint(work_dir: str) -> str:
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        return f.read().strip()


def save_teacher(model_cfg, tmp_path, name='teacher', seed=1):
    """Build a teacher with random weights; save its config and checkpoint under ``tmp_path``."""
    import copy

    from mmengine.config import ConfigDict

    from mmdet.registry import MODELS
    torch.manual_seed(seed)
    teacher = MODELS.build(ConfigDict(copy.deepcopy(model_cfg)))
    teacher.init_weights()
    cfg_path = dump_config(dict(model=model_cfg), str(tmp_path / f'{name}.py'))
    ckpt = str(tmp_path / f'{name}.pth')
    torch.save({'state_dict': teacher.state_dict(), 'meta': {}}, ckpt)
    return cfg_path, ckpt, teacher


def distiller(student_cfg, teacher_cfg_path, ckpt, **kw):
    """Build the distiller of ``student_cfg`` (single- or two-stage) with the given teacher."""
    import copy

    from mmdet.registry import MODELS
    cfg = copy.deepcopy(student_cfg)
    cfg['type'] = 'DistillTwoStageDetector' if 'roi_head' in cfg else 'DistillSingleStageDetector'
    cfg.update(teacher_config=teacher_cfg_path, teacher_ckpt=ckpt, **kw)
    return MODELS.build(cfg)


def batch(model, n=2, size=64, seed=0, masks=False):
    """A preprocessed random batch with two boxes (classes 0 and 2) per image (and each box's
    mask with ``masks``)."""
    from mmengine.structures import InstanceData

    from mmdet.structures import DetDataSample
    g = torch.Generator().manual_seed(seed)
    samples = []
    for _ in range(n):
        s = DetDataSample(metainfo=dict(img_shape=(size, size), ori_shape=(size, size),
                                        pad_shape=(size, size), scale_factor=(1.0, 1.0),
                                        batch_input_shape=(size, size)))
        xy = torch.rand(2, 2, generator=g) * size / 2
        s.gt_instances = InstanceData(bboxes=torch.cat([xy, xy + size / 3], 1),
                                      labels=torch.tensor([0, 2]))
        if masks:
            from mmdet.structures.mask import BitmapMasks
            m = np.zeros((2, size, size), dtype=np.uint8)
            for j, (x1, y1, x2, y2) in enumerate(s.gt_instances.bboxes.round().int().tolist()):
                m[j, y1:y2, x1:x2] = 1
            s.gt_instances.masks = BitmapMasks(m, size, size)
        samples.append(s)
    imgs = torch.rand(n, 3, size, size, generator=g) * 255
    return model.data_preprocessor(dict(inputs=list(imgs), data_samples=samples), True)


def probe_first_distill_step(runner) -> dict:
    """A dict that ``runner.train()`` fills with the distillation-only state (feature adapters)
    its first training step computes with (recorded when the first distillation loss runs)."""
    seen = {}
    model = runner.model

    def record(module, args):
        if not seen:
            seen.update({k: v.clone() for k, v in model.distill_state_dict().items()})

    for loss in model.distill_losses.values():
        loss.register_forward_pre_hook(record)
    return seen


def start_lock_holder(work_dir: str) -> subprocess.Popen:
    """Start another process that takes ``work_dir``'s training lock and keeps it (as a running
    training would); returns once the lock is held. The caller kills it."""
    holder = subprocess.Popen(
        [sys.executable, '-c',
         'import sys, time\n'
         'from mmkdcal.utils.work_dir import WorkDirLock\n'
         'WorkDirLock(sys.argv[1]).acquire()\n'
         'print("locked", flush=True)\n'
         'time.sleep(600)\n', work_dir],
        cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT), stdout=subprocess.PIPE, text=True)
    if holder.stdout.readline().strip() != 'locked':
        holder.kill()
        holder.wait()
        raise RuntimeError(f'the lock-holding process could not lock {work_dir}')
    return holder


def write_cifar100_like(root: str,
                        n_train: int = 8,
                        n_test: int = 4,
                        seed: int = 0) -> Dict[str, Any]:
    """Write a tiny fake CIFAR-100 in the real on-disk format.

    Creates ``root/cifar-100-python/{train,test,meta}`` as protocol-2 pickles with the same keys,
    dtypes and pixel layout as the real files (random pixels and labels; class names
    ``fine_00``..``fine_99`` and ``coarse_00``..``coarse_19``).

    Args:
        root (str): Directory to create the folder in.
        n_train (int): Number of training images.
        n_test (int): Number of test images.
        seed (int): Seed of the random pixels/labels.

    Returns:
        dict: the planted values, ``{'train': (images (N,32,32,3) uint8 RGB, fine labels (N,),
        coarse labels (N,)), 'test': (...), 'fine_label_names': [...],
        'coarse_label_names': [...], 'folder': path}``.
    """
    if n_train < 0 or n_test < 0:
        raise ValueError(f'write_cifar100_like: n_train and n_test must be >= 0, got {n_train}, '
                         f'{n_test}.')
    rng = np.random.default_rng(seed)
    folder = osp.join(str(root), 'cifar-100-python')
    os.makedirs(folder, exist_ok=True)
    planted: Dict[str, Any] = dict(folder=folder)
    for split, n in (('train', n_train), ('test', n_test)):
        images = rng.integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)
        fine = rng.integers(0, 100, size=n).astype(np.int64)
        coarse = rng.integers(0, 20, size=n).astype(np.int64)
        content = {
            'filenames': [f'fake_{split}_{i:05d}.png' for i in range(n)],
            'batch_label': f'{split}ing batch 1 of 1',
            'fine_labels': [int(v) for v in fine],
            'coarse_labels': [int(v) for v in coarse],
            'data': np.ascontiguousarray(images.transpose(0, 3, 1, 2).reshape(n, 3072)),
        }
        with open(osp.join(folder, split), 'wb') as f:
            pickle.dump(content, f, protocol=2)
        planted[split] = (images, fine, coarse)
    meta = dict(fine_label_names=[f'fine_{i:02d}' for i in range(100)],
                coarse_label_names=[f'coarse_{i:02d}' for i in range(20)])
    with open(osp.join(folder, 'meta'), 'wb') as f:
        pickle.dump(meta, f, protocol=2)
    planted.update(meta)
    return planted
