"""Distil one config of every family of MMDetection's zoo at toy size; write docs/zoo.md's table.

For each folder of mmdet's own configs (``mmdet/.mim/configs/<family>/``), the family's simplest
COCO config (:func:`simplest_config`) is built as a KD student at toy size (backbone and input
shrunk, see :func:`toy_model`), with a teacher of the same config and random weights, and runs one
training step. The outcome is ``distils``, ``refused: <reason>`` (the distiller's build-time
refusal) or ``crash at build|step: <error>`` (a bug: the zoo test fails on it). Folders without a
COCO config (datasets other than COCO, tracking) are listed as such.

Usage::

    python tools/zoo_table.py            # print the table
    python tools/zoo_table.py --write    # rewrite the table in docs/zoo.md
"""
import argparse
import copy
import os
import os.path as osp
import re
import sys
import tempfile
import traceback
from typing import Any, List, Optional, Tuple

import numpy as np
import torch
from mmengine.config import Config, ConfigDict
from mmengine.logging import MessageHub
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData, PixelData

import mmdet
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmdet.structures.mask import BitmapMasks

import mmkdcal  # noqa: F401  (registers the distillers)
from mmkdcal.models.distillers import distiller_type

MMDET_CONFIGS = osp.join(osp.dirname(mmdet.__file__), '.mim', 'configs')
DOC = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'docs', 'zoo.md')
BEGIN, END = '<!-- zoo table: begin -->', '<!-- zoo table: end -->'
SIZE = 128
WIDTH = 8  # base channels of the ResNet-18 that replaces every backbone

#: The distillation losses of the one step, by distiller kind (the first that fits).
LOSSES = {
    'DETR': dict(loss_kd=dict(type='BinaryKDLoss', inputs='logits', beta=1.0)),
    'TwoStage': dict(loss_kd=dict(type='KDLoss', inputs='roi_cls', tau=2.0)),
    'SingleStage': dict(loss_kd=dict(type='BinaryKDLoss', inputs='cls', beta=1.0)),
}


def families() -> List[str]:
    """Every config folder of the installed mmdet (``_base_`` aside)."""
    return sorted(f for f in os.listdir(MMDET_CONFIGS)
                  if osp.isdir(osp.join(MMDET_CONFIGS, f)) and f != '_base_')


def simplest_config(family: str) -> Optional[str]:
    """The folder's COCO config with the shortest name (ties by name), proposal-only (RPN)
    configs last; None when the folder has no COCO config."""
    names = [n for n in os.listdir(osp.join(MMDET_CONFIGS, family))
             if n.endswith('.py') and 'coco' in n]
    key = (lambda n: (bool(re.match(r'(ga-|cascade-)?rpn', n)), 'panoptic' in n, len(n), n))
    return sorted(names, key=key)[0] if names else None


def _walk(obj: Any, fn) -> Any:
    if isinstance(obj, list):
        return [_walk(v, fn) for v in obj]
    if not isinstance(obj, dict):
        return obj
    return fn({k: _walk(v, fn) for k, v in obj.items()})


def _cpu_norms(d: dict) -> dict:
    """SyncBN -> BN (one process); at most 100 boxes per image."""
    if d.get('type') in ('SyncBN', 'MMSyncBN'):
        d['type'] = 'BN'
    for key in ('nms_pre', 'max_per_img'):
        if isinstance(d.get(key), int):
            d[key] = min(d[key], 100)
    return d


def toy_model(model: dict) -> dict:
    """The model at toy size: a depth-18, ``WIDTH``-channel ResNet for the backbone (its
    neck's input widths to match), SyncBN as BN, no batch augments."""
    model = _walk(copy.deepcopy(model), _cpu_norms)
    model.get('data_preprocessor', {}).pop('batch_augments', None)
    backbone, neck = model.get('backbone'), model.get('neck')
    necks = neck if isinstance(neck, list) else [neck]
    first = necks[0] if necks and isinstance(necks[0], dict) else {}
    ins = first.get('in_channels')
    if isinstance(backbone, dict) and isinstance(ins, (list, tuple)) and len(ins) <= 4:
        outs = tuple(range(4 - len(ins), 4))
        model['backbone'] = dict(type='ResNet', depth=18, base_channels=WIDTH, num_stages=4,
                                 out_indices=outs, norm_cfg=dict(type='BN'), norm_eval=False,
                                 style='pytorch')
        first['in_channels'] = [WIDTH * 2**i for i in outs]
    return model


def toy_batch(model, n: int = 2, size: int = SIZE, seed: int = 0) -> dict:
    """A preprocessed random batch: two boxes per image with their masks and a semantic map."""
    g = torch.Generator().manual_seed(seed)
    samples = []
    for _ in range(n):
        s = DetDataSample(metainfo=dict(img_shape=(size, size), ori_shape=(size, size),
                                        pad_shape=(size, size), scale_factor=(1.0, 1.0),
                                        batch_input_shape=(size, size), flip=False,
                                        flip_direction=None, border=(0, size, 0, size)))
        xy = torch.rand(2, 2, generator=g) * size / 2
        boxes = torch.cat([xy, xy + size / 3], 1)
        masks = np.zeros((2, size, size), dtype=np.uint8)
        for j, (x1, y1, x2, y2) in enumerate(boxes.round().int().tolist()):
            masks[j, y1:y2, x1:x2] = 1
        s.gt_instances = InstanceData(bboxes=boxes, labels=torch.tensor([0, 2]),
                                      masks=BitmapMasks(masks, size, size))
        s.gt_sem_seg = PixelData(sem_seg=torch.from_numpy(masks[:1].astype(np.int64)))
        s.ignored_instances = InstanceData(bboxes=torch.zeros(0, 4), labels=torch.zeros(0).long())
        s.proposals = InstanceData(bboxes=torch.cat([boxes, boxes + 2]),
                                   scores=torch.ones(4))
        samples.append(s)
    imgs = torch.rand(n, 3, size, size, generator=g) * 255
    return model.data_preprocessor(dict(inputs=list(imgs), data_samples=samples), True)


def _losses_for(kind_cls: type) -> dict:
    names = [c.__name__ for c in kind_cls.__mro__]
    for key, losses in LOSSES.items():
        if any(key in n for n in names):
            return copy.deepcopy(losses)
    raise ValueError(f'no zoo losses for {kind_cls.__name__}')


def _short(exc: BaseException) -> str:
    msg = ' '.join(str(exc).split())
    return f'{type(exc).__name__}: {msg[:300]}'


def run_family(family: str, tmp: str) -> Tuple[Optional[str], str]:
    """(config, outcome) of one family: distils / refused: ... / crash at build|step: ..."""
    name = simplest_config(family)
    if name is None:
        return None, 'no COCO config'
    try:
        cfg = Config.fromfile(osp.join(MMDET_CONFIGS, family, name))
    except ImportError as exc:  # a config that imports a package the stack lacks
        return name, 'not built: ' + str(exc).split("'allow_failed")[0].strip(' ,{')
    if 'model' not in cfg:
        return name, 'no COCO config (a shared schedule, no model)'
    model = cfg.model.to_dict()
    model = toy_model(model)
    try:
        dtype = distiller_type(model)
    except ValueError as exc:
        return name, f'refused: {exc}'
    ckpt = osp.join(tmp, f'{family}.pth')
    try:
        torch.manual_seed(1)
        teacher = MODELS.build(ConfigDict(copy.deepcopy(model)))
        torch.save({'state_dict': teacher.state_dict(), 'meta': {}}, ckpt)
        del teacher
        torch.manual_seed(0)
        student = MODELS.build(ConfigDict(dict(
            model, type=dtype, teacher_config=copy.deepcopy(model), teacher_ckpt=ckpt,
            teacher_temperature=1.0, distill_losses=_losses_for(MODELS.get(dtype)))))
    except ValueError as exc:
        if 'mmkdcal' in traceback.extract_tb(exc.__traceback__)[-1].filename:
            return name, f'refused: {" ".join(str(exc).split())}'
        return name, f'crash at build: {_short(exc)}'
    except Exception as exc:  # noqa: BLE001 (the outcome names it)
        return name, f'crash at build: {_short(exc)}'
    try:
        student.train()
        data = toy_batch(student)
        losses = student.loss(data['inputs'], data['data_samples'])
        if not any(k.startswith('loss_kd') for k in losses):
            return name, 'crash at step: no distillation loss in the loss dict'
        total, _ = student.parse_losses(losses)
        total.backward()
    except Exception as exc:  # noqa: BLE001
        return name, f'crash at step: {_short(exc)}'
    return name, 'distils'


def zoo(only: Optional[List[str]] = None) -> List[Tuple[str, Optional[str], str]]:
    """(family, config, outcome) for every family (or those in ``only``)."""
    init_default_scope('mmdet')
    MessageHub.get_current_instance().update_info('epoch', 0)
    MessageHub.get_current_instance().update_info('iter', 0)
    torch.set_num_threads(1)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for family in only or families():
            rows.append((family, *run_family(family, tmp)))
    return rows


def table(rows) -> str:
    """The markdown table of ``rows`` plus a count line."""
    lines = ['| family | config | outcome |', '|---|---|---|']
    for family, config, outcome in rows:
        lines.append(f"| {family} | {config or '-'} | {outcome.replace('|', '/')} |")
    n = {k: sum(o.startswith(k) for _, _, o in rows)
         for k in ('distils', 'refused', 'crash', 'no COCO', 'not built')}
    lines.append('')
    lines.append(f"{n['distils']} families distil, {n['refused']} are refused at build, "
                 f"{n['crash']} crash; {n['no COCO']} folders have no COCO config and "
                 f"{n['not built']} need a package the stack lacks.")
    return '\n'.join(lines)


def doc_table(path: str = DOC) -> str:
    """The table currently in docs/zoo.md."""
    with open(path) as f:
        text = f.read()
    return text.split(BEGIN, 1)[1].split(END, 1)[0].strip()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--write', action='store_true', help='rewrite the table in docs/zoo.md')
    parser.add_argument('families', nargs='*', help='only these families (printing only)')
    args = parser.parse_args(argv)
    rows = zoo(args.families or None)
    text = table(rows)
    if args.write and not args.families:
        with open(DOC) as f:
            doc = f.read()
        head, rest = doc.split(BEGIN, 1)
        with open(DOC, 'w') as f:
            f.write(f'{head}{BEGIN}\n{text}\n{END}{rest.split(END, 1)[1]}')
    print(text)
    return int(any(o.startswith('crash') for _, _, o in rows))


if __name__ == '__main__':
    sys.exit(main())
