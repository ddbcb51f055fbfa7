"""Distil one config of every family of MMDetection's zoo at toy size; write docs/zoo.md's table.

For each folder of mmdet's own configs (``mmdet/.mim/configs/<family>/``), the family's simplest
COCO config (:func:`coco_configs`) is built as a KD student at toy size (backbone and input
shrunk, see :func:`toy_model`), with a teacher of the same config and random weights, and runs one
training step on a batch with the annotations its training pipeline loads (:func:`toy_batch`).
The outcome is ``distils``, ``refused: <reason>`` (the distiller's build-time refusal),
``needs a CUDA op: <op>`` (every COCO config of the folder runs an mmcv op with no CPU kernel; a
config that does is passed over for the next simplest one), ``not built: <error>`` (the config
imports, or builds a part that needs, a package the stack lacks) or ``crash at build|step:
<error>`` (a bug: the zoo test fails on it). Folders without a COCO config (datasets other
than COCO, tracking) are listed as such. The note column says where the toy build departs from
the rule for a family.

Usage::

    python tools/zoo_table.py            # print the table
    python tools/zoo_table.py --write    # rewrite the table in docs/zoo.md
"""
import argparse
import copy
import logging
import os
import os.path as osp
import re
import sys
import tempfile
import traceback
from typing import Any, List, NamedTuple, Optional, Tuple, Union

import numpy as np
import torch
from mmengine.config import Config, ConfigDict
from mmengine.logging import MessageHub, MMLogger
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
#: The image size of a second try when a deformable conv meets a level smaller than its kernel
#: (mmcv's kernel needs 3 px at every level; FPN levels go down to stride 128).
LARGE = 384
WIDTH = 8  # base channels of the ResNet that replaces every backbone
NUM_QUERIES = 100  # at most this many queries for a DETR-like model (128 px has 340 tokens)
CUDA_ONLY = re.compile(r'(\w+)_impl: implementation for device cpu not found')

#: The distillation losses of the one step, by distiller kind (the first that fits); a DETR whose
#: classifier is a softmax takes KDLoss instead (:func:`_losses_for`).
LOSSES = {
    'DETR': dict(loss_kd=dict(type='BinaryKDLoss', inputs='logits', beta=1.0)),
    'TwoStage': dict(loss_kd=dict(type='KDLoss', inputs='roi_cls', tau=2.0)),
    'SingleStage': dict(loss_kd=dict(type='BinaryKDLoss', inputs='cls', beta=1.0)),
}


def families() -> List[str]:
    """Every config folder of the installed mmdet (``_base_`` aside)."""
    return sorted(f for f in os.listdir(MMDET_CONFIGS)
                  if osp.isdir(osp.join(MMDET_CONFIGS, f)) and f != '_base_')


def coco_configs(family: str) -> List[str]:
    """The folder's COCO configs, simplest first: shortest name (ties by name), proposal-only
    (RPN) and panoptic configs last."""
    names = [n for n in os.listdir(osp.join(MMDET_CONFIGS, family))
             if n.endswith('.py') and 'coco' in n]
    key = (lambda n: (bool(re.match(r'(ga-|cascade-)?rpn', n)), 'panoptic' in n, len(n), n))
    return sorted(names, key=key)


def _walk(obj: Any, fn) -> Any:
    if isinstance(obj, list):
        return [_walk(v, fn) for v in obj]
    if not isinstance(obj, dict):
        return obj
    return fn({k: _walk(v, fn) for k, v in obj.items()})


def _toy_sizes(d: dict) -> dict:
    """SyncBN -> BN (one process); at most 100 boxes per image, NUM_QUERIES queries; no
    pretrained weights."""
    if d.get('type') in ('SyncBN', 'MMSyncBN'):
        d['type'] = 'BN'
    init = d.get('init_cfg')
    if isinstance(init, dict) and init.get('type') == 'Pretrained':
        d.pop('init_cfg')
    if isinstance(d.get('pretrained'), str):  # the older way to name pretrained weights
        d.pop('pretrained')
    for key, most in (('nms_pre', 100), ('max_per_img', 100), ('num_queries', NUM_QUERIES)):
        if isinstance(d.get(key), int):
            d[key] = min(d[key], most)
    return d


def toy_model(model: dict) -> Tuple[dict, List[str]]:
    """The model at toy size, and notes on where it departs from the rule.

    The rule: a depth-18, ``WIDTH``-channel ResNet for the backbone, its last levels feeding the
    neck (whose input widths follow), SyncBN as BN, no batch augments. A backbone with
    deformable convs becomes a ResNet-50 that keeps them (a ResNet-18 block has none); a neck
    that passes the backbone's levels on as its first outputs (SSD's) gets the levels of the
    head's first strides, and its outputs and the head's inputs follow.
    """
    model = _walk(copy.deepcopy(model), _toy_sizes)
    model.get('data_preprocessor', {}).pop('batch_augments', None)
    backbone, neck, head = model.get('backbone'), model.get('neck'), model.get('bbox_head')
    necks = neck if isinstance(neck, list) else [neck]
    first = necks[0] if necks and isinstance(necks[0], dict) else {}
    ins = first.get('in_channels')
    notes = []
    if isinstance(backbone, dict) and isinstance(ins, (list, tuple)) and len(ins) <= 4:
        start = 4 - len(ins)
        given = first.get('out_channels')
        passes_on = isinstance(given, (list, tuple)) and list(given[:len(ins)]) == list(ins)
        if passes_on:  # the backbone's levels are the neck's (and the head's) first levels
            start = int(np.log2(_prior_strides(head)[0] / 4))
            notes.append(f'the toy backbone gives the levels of strides '
                         f'{_prior_strides(head)[:len(ins)]}, as the neck passes them on')
        outs = tuple(range(start, start + len(ins)))
        dcn = backbone.get('dcn')
        model['backbone'] = dict(type='ResNet', depth=50 if dcn else 18, base_channels=WIDTH,
                                 num_stages=4, out_indices=outs, norm_cfg=dict(type='BN'),
                                 norm_eval=False, style='pytorch', dcn=dcn,
                                 stage_with_dcn=backbone.get('stage_with_dcn', (False, ) * 4))
        if dcn:
            notes.append(f'a ResNet-50 toy backbone, which keeps the {dcn["type"]} convs')
        widths = [WIDTH * (4 if dcn else 1) * 2**i for i in outs]  # a Bottleneck's expansion
        first['in_channels'] = widths
        if passes_on:
            first['out_channels'] = widths + list(given[len(ins):])
            head['in_channels'] = widths + list(head['in_channels'][len(ins):])
    return model, notes


def _prior_strides(head: Optional[dict]) -> List[int]:
    """The strides of a dense head's prior generator (its first value where a pair)."""
    priors = (head or {}).get('anchor_generator', (head or {}).get('prior_generator', {}))
    return [s[0] if isinstance(s, (list, tuple)) else s for s in priors.get('strides', ())]


def toy_size(model: dict) -> int:
    """The toy image size: SIZE, or the input size a head's anchors are laid out for (SSD)."""
    return ((model.get('bbox_head') or {}).get('anchor_generator') or {}).get('input_size', SIZE)


def loaded_annotations(cfg: Config) -> Tuple[bool, bool]:
    """(masks, semantic map): whether the config's training pipeline loads them."""
    found = []
    _walk(cfg.get('train_dataloader', {}), lambda d: found.append(d) or d)
    loads = [d for d in found if d.get('type') in ('LoadAnnotations', 'LoadPanopticAnnotations')]
    panoptic = any(d['type'] == 'LoadPanopticAnnotations' for d in loads)
    return (any(d.get('with_mask', panoptic) for d in loads),
            any(d.get('with_seg', panoptic) for d in loads))


def toy_batch(model, n: int = 2, size: int = SIZE, seed: int = 0, masks: bool = True,
              seg: bool = True) -> dict:
    """A preprocessed random batch: two boxes per image, with their masks and a semantic map
    where asked."""
    g = torch.Generator().manual_seed(seed)
    samples = []
    for _ in range(n):
        s = DetDataSample(metainfo=dict(img_shape=(size, size), ori_shape=(size, size),
                                        pad_shape=(size, size), scale_factor=(1.0, 1.0),
                                        batch_input_shape=(size, size), flip=False,
                                        flip_direction=None, border=(0, size, 0, size)))
        xy = torch.rand(2, 2, generator=g) * size / 2
        boxes = torch.cat([xy, xy + size / 3], 1)
        bitmaps = np.zeros((2, size, size), dtype=np.uint8)
        for j, (x1, y1, x2, y2) in enumerate(boxes.round().int().tolist()):
            bitmaps[j, y1:y2, x1:x2] = 1
        s.gt_instances = InstanceData(bboxes=boxes, labels=torch.tensor([0, 2]))
        if masks:
            s.gt_instances.masks = BitmapMasks(bitmaps, size, size)
        if seg:
            s.gt_sem_seg = PixelData(sem_seg=torch.from_numpy(bitmaps[:1].astype(np.int64)))
        s.ignored_instances = InstanceData(bboxes=torch.zeros(0, 4), labels=torch.zeros(0).long())
        s.proposals = InstanceData(bboxes=torch.cat([boxes, boxes + 2]),
                                   scores=torch.ones(4))
        samples.append(s)
    imgs = torch.rand(n, 3, size, size, generator=g) * 255
    return model.data_preprocessor(dict(inputs=list(imgs), data_samples=samples), True)


def _losses_for(kind_cls: type, model: dict) -> dict:
    names = [c.__name__ for c in kind_cls.__mro__]
    loss_cls = (model.get('bbox_head') or {}).get('loss_cls') or {}
    if any('DETR' in n for n in names) and not loss_cls.get('use_sigmoid', True):
        return dict(loss_kd=dict(type='KDLoss', inputs='logits', tau=2.0))
    for key, losses in LOSSES.items():
        if any(key in n for n in names):
            return copy.deepcopy(losses)
    raise ValueError(f'no zoo losses for {kind_cls.__name__}')


def _short(exc: BaseException) -> str:
    msg = ' '.join(str(exc).split())
    return f'{type(exc).__name__}: {msg[:300]}'


class Plan(NamedTuple):
    """One config made ready for its step: the toy model, its distiller, its batch; or the
    outcome that needs no step (``dtype`` None: refused by the student's class)."""
    model: dict
    dtype: Optional[str]
    size: int
    annotations: Tuple[bool, bool]
    notes: Tuple[str, ...]
    outcome: Optional[str] = None


def plan_config(family: str, name: str) -> Union[str, Plan]:
    """The config made ready for its step, or its outcome where it has no model or imports a
    package the stack lacks."""
    try:
        cfg = Config.fromfile(osp.join(MMDET_CONFIGS, family, name))
    except ImportError as exc:  # a config that imports a package the stack lacks
        return 'not built: ' + str(exc).split("'allow_failed")[0].strip(' ,{')
    if 'model' not in cfg:
        return 'no COCO config (a shared schedule, no model)'
    model, notes = toy_model(cfg.model.to_dict())
    size = toy_size(model)
    if size != SIZE:
        notes.append(f'{size} px images, the input size its anchors are laid out for')
    plan = Plan(model, None, size, loaded_annotations(cfg), tuple(notes))
    try:
        return plan._replace(dtype=distiller_type(model))
    except ValueError as exc:
        return plan._replace(outcome=f'refused: {exc}')


def run_plan(plan: Plan, ckpt: str) -> Tuple[str, Tuple[str, ...]]:
    """(outcome, notes) of one build and training step: distils, refused: ..., needs a CUDA op:
    ..., crash at build|step: ...; a second try at LARGE px where a deformable conv meets a
    level smaller than its kernel."""
    model, notes = plan.model, plan.notes
    try:
        torch.manual_seed(1)
        teacher = MODELS.build(ConfigDict(copy.deepcopy(model)))
        teacher.init_weights()  # some parameters are left uninitialised until then (DINO's)
        torch.save({'state_dict': teacher.state_dict(), 'meta': {}}, ckpt)
        del teacher
        torch.manual_seed(0)
        student = MODELS.build(ConfigDict(dict(
            model, type=plan.dtype, teacher_config=copy.deepcopy(model), teacher_ckpt=ckpt,
            teacher_temperature=1.0, distill_losses=_losses_for(MODELS.get(plan.dtype), model))))
        student.init_weights()
    except ValueError as exc:
        if 'mmkdcal' in traceback.extract_tb(exc.__traceback__)[-1].filename:
            return f'refused: {" ".join(str(exc).split())}', notes
        return f'crash at build: {_short(exc)}', notes
    except Exception as exc:  # noqa: BLE001 (the outcome names it)
        if isinstance(exc, ImportError) or 'is not installed' in str(exc):  # BoxInst's skimage
            return f'not built: {" ".join(str(exc).split())}', notes
        return f'crash at build: {_short(exc)}', notes
    student.train()
    for size in (plan.size, LARGE):
        try:
            data = toy_batch(student, size=size, masks=plan.annotations[0],
                             seg=plan.annotations[1])
            losses = student.loss(data['inputs'], data['data_samples'])
            if not any(k.startswith('loss_kd') for k in losses):
                return 'crash at step: no distillation loss in the loss dict', notes
            total, _ = student.parse_losses(losses)
            total.backward()
            return 'distils', notes
        except RuntimeError as exc:
            if 'input image is smaller than kernel' in str(exc) and size < LARGE:
                notes += (f'{LARGE} px images: at {size} px a deformable conv meets a level '
                          'smaller than its kernel', )
                continue
            op = CUDA_ONLY.search(str(exc))
            if op:
                return f'needs a CUDA op: {op.group(1)} (mmcv has no CPU kernel)', notes
            return f'crash at step: {_short(exc)}', notes
        except Exception as exc:  # noqa: BLE001
            return f'crash at step: {_short(exc)}', notes


def run_family(family: str, tmp: str,
               shared: Optional[dict] = None) -> Tuple[Optional[str], str, str]:
    """(config, outcome, note) of one family: its simplest COCO config whose ops run on this
    CPU (see the module's docstring for the outcomes). Plans met before, in ``shared``, are not
    built again."""
    names = coco_configs(family)
    if not names:
        return None, 'no COCO config', ''
    shared = {} if shared is None else shared
    passed = []
    for name in names:
        plan = plan_config(family, name)
        if isinstance(plan, Plan) and plan.outcome:
            outcome, notes = plan.outcome, plan.notes
        elif isinstance(plan, Plan):
            key = repr(plan[:4])
            if key not in shared:
                shared[key] = run_plan(plan, osp.join(tmp, f'{family}.pth'))
            outcome, notes = shared[key]
        else:
            outcome, notes = plan, ()
        if not outcome.startswith('needs a CUDA op'):
            notes = [f'{n} {o}' for n, o in passed] + list(notes)
            return name, outcome, '; '.join(notes)
        passed.append((name, outcome))
    return names[0], passed[0][1] + ', in every COCO config of the folder', ''


def zoo(only: Optional[List[str]] = None) -> List[Tuple[str, Optional[str], str, str]]:
    """(family, config, outcome, note) for every family (or those in ``only``)."""
    init_default_scope('mmdet')
    MessageHub.get_current_instance().update_info('epoch', 0)
    MessageHub.get_current_instance().update_info('iter', 0)
    torch.set_num_threads(1)
    rows, shared = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for family in only or families():
            rows.append((family, *run_family(family, tmp, shared)))
    return rows


#: The outcomes counted in the table's last line, by the start of their text.
COUNTS = (('distils', 'families distil'), ('refused', 'are refused at build'),
          ('needs a CUDA op', 'need a CUDA op that mmcv has no CPU kernel for'),
          ('crash', 'crash'), ('no COCO', 'folders have no COCO config'),
          ('not built', 'need a package the stack lacks'))


def table(rows) -> str:
    """The markdown table of ``rows`` plus a count line."""
    lines = ['| family | config | outcome | note |', '|---|---|---|---|']
    for family, config, outcome, note in rows:
        lines.append(f"| {family} | {config or '-'} | {outcome.replace('|', '/')} | "
                     f"{note.replace('|', '/')} |")
    counts = [f'{sum(o.startswith(k) for _, _, o, _ in rows)} {what}' for k, what in COUNTS]
    lines += ['', ', '.join(counts) + '.']
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
    MMLogger.get_current_instance().setLevel(logging.WARNING)  # the table, not the init logs
    rows = zoo(args.families or None)
    text = table(rows)
    if args.write and not args.families:
        with open(DOC) as f:
            doc = f.read()
        head, rest = doc.split(BEGIN, 1)
        with open(DOC, 'w') as f:
            f.write(f'{head}{BEGIN}\n{text}\n{END}{rest.split(END, 1)[1]}')
    print(text)
    return int(any(o.startswith('crash') for _, _, o, _ in rows))


if __name__ == '__main__':
    sys.exit(main())
