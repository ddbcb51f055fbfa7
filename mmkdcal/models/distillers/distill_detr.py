"""Distillation for query-based detectors: DETR, Conditional DETR, Deformable DETR and DINO.

The student trains through its own stock ``loss()``, observed (head forward, DINO's
``forward_transformer`` split, ``forward_decoder``); the teacher runs only its
``forward_transformer`` and head forward, its class logits divided by the calibration temperature.
Query alignment (``'hungarian'``, DETRDistill; ``'shared_queries'``, KD-DETR) and the inputs
``'logits'`` / ``'boxes'`` / ``'memory'``: docs/detr_distillation.md; a teacher of another family
(``'neck'``, ``'pred_cls'``, ``'pred_box'``): docs/heterogeneous.md.
"""
import inspect
from dataclasses import replace
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Set, Tuple, Union

import torch
from mmengine.config import Config
from mmengine.structures import InstanceData
from torch import Tensor

from mmdet.models.detectors import DETR, DINO, ConditionalDETR, DeformableDETR, DetectionTransformer
from mmdet.registry import MODELS
from mmdet.structures.bbox import bbox_cxcywh_to_xyxy

from ..contract import DistillBatch, DistillInput
from .distill_single_stage import DistillSingleStageDetector, neck_channels
from .distiller_mixin import DistillerMixin, TemperatureLike, foreground_confidence
from .heterogeneous import (PRED_INPUTS, class_count_problem, detector_num_classes, hetero_pair,
                            soft_targets, softmax_soft_targets, teacher_detections)
from .query_matching import match_queries, query_match_cost
from .taps import OutputTaps, single_call

__all__ = ['ALIGNMENTS', 'DETRDistillerMixin', 'DistillConditionalDETR', 'DistillDETR',
           'DistillDINO', 'DistillDeformableDETR', 'detection_batches', 'detr_activation']

#: The ``query_alignment`` values.
ALIGNMENTS = ('hungarian', 'shared_queries')
#: The ``teacher_layers`` values.
TEACHER_LAYERS = ('same', 'last')
#: Matching-cost weights: those of the HungarianAssigner of MMDetection's DINO and Deformable
#: DETR configs (the classification term here the KL divergence to the teacher's soft target).
DEFAULT_MATCH_COSTS = dict(cls=2.0, l1=5.0, giou=2.0)
#: Plain DETR's ``'pred_cls'``: (K + 1)-way, weighted as its ``loss_cls`` weights hard labels.
SOFTMAX_PRED_CLS = replace(
    PRED_INPUTS[0], activation='softmax', provides=frozenset({'weight', 'avg_factor'}),
    description='softmax class logits (M, K + 1, the last one "no object") of the queries '
                "against the teacher's calibrated detections (log-probabilities of them)")


def detr_activation(bbox_head) -> str:
    """``'sigmoid'`` or ``'softmax'``: how a DETR-family head scores classes."""
    return 'sigmoid' if getattr(bbox_head.loss_cls, 'use_sigmoid', False) else 'softmax'


def num_decoder_outputs(detector) -> int:
    """How many decoder layers' outputs a DETR-family detector's head receives."""
    decoder = detector.decoder
    return int(decoder.num_layers) if getattr(decoder, 'return_intermediate', True) else 1


def _check_number_list(field: str, values, length: int) -> Tuple[float, ...]:
    if not isinstance(values, (list, tuple)) or any(
            isinstance(v, bool) or not isinstance(v, (int, float)) for v in values):
        raise TypeError(f'{field} must be a list of numbers (one per student decoder layer), '
                        f'got {values!r}.')
    if len(values) != length:
        raise ValueError(f'{field} has {len(values)} values but the student decoder has {length} '
                         f'layers: give one weight per layer (0 leaves a layer out).')
    if any(not v >= 0 or v == float('inf') for v in values) or not sum(values) > 0:
        raise ValueError(f'{field} must be finite and >= 0 with at least one > 0, got '
                         f'{list(values)}.')
    return tuple(float(v) for v in values)


def _call_kwargs(record: dict, method) -> dict:
    """Keyword arguments that repeat a recorded call (``**kwargs`` parameters expanded)."""
    params = inspect.signature(method).parameters
    kwargs = {}
    for name, value in record.items():
        var_kw = name in params and params[name].kind is inspect.Parameter.VAR_KEYWORD
        if name != 'result':
            kwargs.update(value if var_kw else {name: value})
    return kwargs


class DETRDistillerMixin(DistillerMixin):
    """The DETR-family distiller; mix in before an MMDetection ``DetectionTransformer`` class
    (``DistillDINO(DETRDistillerMixin, DINO)``, ...).

    Args:
        teacher_config: The teacher's config (file path, ``mmdet::`` path or model dict): a
            DETR-family detector with the student's classes and class activation, or another.
        teacher_ckpt, teacher_temperature, distill_losses, teacher_inference, teacher_fp16: As
            for :class:`~mmkdcal.models.distillers.DistillSingleStageDetector`.
        query_alignment: ``'hungarian'`` or ``'shared_queries'``.
        layer_weights: One weight per student decoder layer (0 leaves it out); default 1 each.
        teacher_layers: ``'same'`` (student layer l <- teacher layer l; needs the same number of
            decoder layers) or ``'last'`` (every student layer <- the teacher's final layer).
        match_costs: ``'hungarian'`` cost weights ``dict(cls=, l1=, giou=)``; defaults
            :data:`DEFAULT_MATCH_COSTS`.
        *args, **kwargs: The student detector's own arguments.
    """

    STUDENT_CLASS = DetectionTransformer

    DISTILL_INPUTS = (
        DistillInput('logits', 'logits', 'sigmoid class logits (M, K) of the aligned decoder '
                     'queries of every distilled layer', activation='sigmoid',
                     provides=frozenset({'weight', 'avg_factor'}), temperature=True),
        DistillInput('boxes', 'boxes',
                     'boxes of the aligned decoder queries, normalised (x1, y1, x2, y2) (M, 4)',
                     provides=frozenset({'weight', 'avg_factor'}), box_format='xyxy'),
        DistillInput('memory', 'features', 'encoder memory as (N, C, H, W) maps, one per '
                     'feature level', per_level=True),
    )

    def __init__(self, *args, teacher_config: Union[str, Path, dict, Config],
                 teacher_ckpt: Optional[str] = None, teacher_temperature: TemperatureLike = None,
                 distill_losses: Optional[Dict[str, dict]] = None,
                 teacher_inference: Optional[dict] = None, teacher_fp16: Optional[bool] = None,
                 query_alignment: str = 'hungarian',
                 layer_weights: Optional[Sequence[float]] = None, teacher_layers: str = 'same',
                 match_costs: Optional[Dict[str, float]] = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if query_alignment not in ALIGNMENTS:
            raise ValueError(f'model.query_alignment must be one of {ALIGNMENTS}, got '
                             f'{query_alignment!r}.')
        if teacher_layers not in TEACHER_LAYERS:
            raise ValueError(f'model.teacher_layers must be one of {TEACHER_LAYERS}, got '
                             f'{teacher_layers!r}.')
        n_layers = num_decoder_outputs(self)
        self.query_alignment, self.teacher_layers = query_alignment, teacher_layers
        self.layer_weights = _check_number_list(
            'model.layer_weights', [1.0] * n_layers if layer_weights is None
            else list(layer_weights), n_layers)
        if match_costs is not None and (not isinstance(match_costs, dict)
                                        or set(match_costs) - set(DEFAULT_MATCH_COSTS)):
            raise ValueError(f'model.match_costs must be a dict with keys among '
                             f'{list(DEFAULT_MATCH_COSTS)}, got {match_costs!r}.')
        costs = dict(DEFAULT_MATCH_COSTS, **(match_costs or {}))
        if any(isinstance(v, bool) or not isinstance(v, (int, float)) or not v >= 0
               for v in costs.values()) or not sum(costs.values()) > 0:
            raise ValueError(f'model.match_costs must be numbers >= 0, at least one > 0, got '
                             f'{costs}.')
        self.match_costs = {k: float(v) for k, v in costs.items()}
        self._init_distiller(teacher_config, teacher_ckpt, teacher_temperature,
                             teacher_inference, distill_losses, teacher_fp16)

    # ------------------------------------------------------------------ construction checks
    def _check_teacher(self, teacher) -> None:
        s_head, t_head = self.bbox_head, getattr(teacher, 'bbox_head', None)
        if not isinstance(teacher, DetectionTransformer):  # another family: necks, detections
            problem = class_count_problem(detector_num_classes(teacher), s_head.num_classes)
            self.hetero = hetero_pair(self, teacher, type(s_head).__name__, type(
                t_head or teacher.roi_head).__name__, () if problem else PRED_INPUTS, problem)
            return
        s_act, t_act = detr_activation(s_head), detr_activation(t_head)
        if s_act != t_act:
            raise ValueError(
                f'Head-family mismatch: the student {type(s_head).__name__} scores classes with '
                f'{s_act}, the teacher {type(t_head).__name__} with {t_act} '
                '(bbox_head.loss_cls.use_sigmoid); class KD compares like with like, so use a '
                'teacher whose head scores classes the same way.')
        if s_head.cls_out_channels != t_head.cls_out_channels:
            raise ValueError(
                f'Class-count mismatch: the student head predicts {s_head.cls_out_channels} '
                f'class logits per query, the teacher {t_head.cls_out_channels} (num_classes '
                f'{s_head.num_classes} vs {t_head.num_classes}). Distil from a teacher trained '
                'on the same classes.')
        n_s, n_t = num_decoder_outputs(self), num_decoder_outputs(teacher)
        if self.teacher_layers == 'same' and n_s != n_t:
            raise ValueError(
                f"model.teacher_layers='same' pairs decoder layer l of the student with layer l "
                f'of the teacher, but the student has {n_s} decoder layers and the teacher '
                f"{n_t}: set teacher_layers='last' (every student layer learns from the "
                "teacher's final layer).")
        if self.query_alignment == 'shared_queries':
            self._check_shared_queries(teacher)

    def _check_shared_queries(self, teacher) -> None:
        s_name = self.STUDENT_CLASS.__name__
        if not issubclass(self.STUDENT_CLASS, DeformableDETR):
            raise ValueError(
                f"model.query_alignment='shared_queries' feeds the teacher's decoder queries "
                f'and reference points through the student decoder, which needs a decoder that '
                f'takes external queries and reference points (DeformableDETR, DINO); the '
                f'{s_name} decoder starts from its own learned query embeddings alone, so the '
                f"queries cannot be shared: use query_alignment='hungarian'.")
        if type(teacher) is not self.STUDENT_CLASS:
            raise ValueError(
                f"Family mismatch: query_alignment='shared_queries' needs a teacher of the "
                f"student's family, whose decoder queries mean the same; the student is "
                f"{s_name}, the teacher {type(teacher).__name__}: use a {s_name} teacher or "
                "query_alignment='hungarian'.")
        if bool(self.as_two_stage) != bool(teacher.as_two_stage):
            raise ValueError(
                f"query_alignment='shared_queries': as_two_stage is {self.as_two_stage} for the "
                f'student and {teacher.as_two_stage} for the teacher, so their decoders take '
                'reference points of different forms (boxes vs points); use the same '
                "as_two_stage, or query_alignment='hungarian'.")
        if self.embed_dims != teacher.embed_dims:
            raise ValueError(
                f"Query-dimension mismatch: query_alignment='shared_queries' sends the "
                f"teacher's decoder queries ({teacher.embed_dims} channels) through the "
                f'student decoder ({self.embed_dims} channels, embed_dims); use a student with '
                "the teacher's transformer width, or query_alignment='hungarian' (which compares "
                'outputs only).')

    def _input_specs(self) -> List[DistillInput]:
        if self.hetero is not None:
            neck = DistillSingleStageDetector.DISTILL_INPUTS[2].with_channels(
                neck_channels(self), neck_channels(self.teacher))
            pred = [SOFTMAX_PRED_CLS if p.name == 'pred_cls' and detr_activation(
                self.bbox_head) == 'softmax' else p for p in PRED_INPUTS]
            return [neck] + [p for p in pred if p.name in self.hetero.allowed]
        return self.input_specs_for(self.bbox_head, self.embed_dims, self.teacher.embed_dims)

    @classmethod
    def input_specs_for(cls, bbox_head, student_dims: Optional[int] = None,
                        teacher_dims: Optional[int] = None) -> List[DistillInput]:
        """The inputs offered for a student DETR-family head (its class activation decides
        ``'logits'``), with the transformer widths (``embed_dims``) when known."""
        logits, boxes, memory = cls.DISTILL_INPUTS
        if detr_activation(bbox_head) == 'softmax':
            logits = replace(logits, activation='softmax',
                             description='softmax class logits (M, K + 1, the last one '
                                         '"no object") of the aligned decoder queries of every '
                                         'distilled layer')
        return [logits, boxes, memory.with_channels(student_dims, teacher_dims)]

    def num_teacher_logit_classes(self) -> int:
        if self.hetero is not None:  # its calibrator maps detection scores
            return detector_num_classes(self.teacher)
        return self.teacher.bbox_head.cls_out_channels

    # ------------------------------------------------------------------ training
    def _tap_student(self, taps: OutputTaps, needed: Set[str]) -> None:
        if 'neck' in needed:
            self._tap_neck(taps)
        if needed & {'logits', 'boxes', 'pred_cls', 'pred_box'}:
            taps.module_output('head', self.bbox_head)
            taps.method_call('transformer', self, 'forward_transformer')
        if 'memory' in needed or (needed & {'logits', 'boxes'}
                                  and self.query_alignment == 'shared_queries'):
            taps.method_call('decoder', self, 'forward_decoder')
        if 'memory' in needed:
            taps.method_call('feats', self, 'extract_feat')

    def teacher_forward(self, batch_inputs: Tensor, batch_data_samples, record_decoder: bool):
        """The teacher's features, head outputs (all decoder layers, no temperature) and, when
        asked, its recorded ``forward_decoder`` call; under ``no_grad``, in eval mode."""
        with OutputTaps() as t_taps:
            if record_decoder:
                t_taps.method_call('decoder', self.teacher, 'forward_decoder')
            with self.teacher_context(batch_inputs.device.type):
                feats = self.teacher.extract_feat(batch_inputs)
                head_inputs = self.teacher.forward_transformer(feats, batch_data_samples)
                outs = self.teacher.bbox_head(**head_inputs)
        return feats, outs, (single_call(t_taps['decoder'], 'teacher forward_decoder')
                             if record_decoder else None)

    def _distill_batches(self, taps: OutputTaps, batch_inputs: Tensor, batch_data_samples,
                         needed: Set[str], teacher_out=None) -> Dict[str, DistillBatch]:
        if self.hetero is not None:  # another family: neck levels; detections, last layer
            batches, t_feats = {}, None
            if 'neck' in needed:
                with self.teacher_context(batch_inputs.device.type):
                    t_feats = self.teacher.extract_feat(batch_inputs)
                batches['neck'] = self._neck_batch(taps, t_feats)
            if needed - {'neck'}:
                s_cls, s_box = (out[-1] for out in self._matching_outputs(taps))
                dets = teacher_detections(self, batch_inputs, batch_data_samples, t_feats)
                batches.update(detection_batches(self.bbox_head, s_cls, s_box, dets,
                                                 [s.metainfo for s in batch_data_samples]))
            return batches
        queries = bool(needed & {'logits', 'boxes'})
        shared = queries and self.query_alignment == 'shared_queries'
        t_feats, (t_cls, t_box), t_dec = self.teacher_forward(
            batch_inputs, batch_data_samples, record_decoder=shared or 'memory' in needed)
        batches: Dict[str, DistillBatch] = {}
        if queries:
            t_cls = t_cls.float()
            self._check_finite(t_cls, 'decoder class logits')
            s_cls, s_box = (self._shared_query_outputs(taps, t_dec) if shared
                            else self._matching_outputs(taps))
            batches.update(self._query_batches(s_cls, s_box, t_cls, t_box.float(), shared))
        if 'memory' in needed:
            s_dec = single_call(taps['decoder'], 'forward_decoder')
            s_feats = single_call(taps['feats'], 'extract_feat')['result']
            batches['memory'] = DistillBatch(_memory_maps(s_dec['memory'], s_feats),
                                             _memory_maps(t_dec['memory'], t_feats))
        return batches

    def _matching_outputs(self, taps: OutputTaps) -> Tuple[Tensor, Tensor]:
        """The student's recorded head outputs of its matching queries (DINO's denoising queries,
        which come first, left out): (layers, N, Q, C) and (layers, N, Q, 4)."""
        s_cls, s_box = single_call(taps['head'], 'bbox_head')
        head_inputs = single_call(taps['transformer'], 'forward_transformer')['result']
        dn_meta = head_inputs.get('dn_meta', None) if isinstance(head_inputs, dict) else None
        n_dn = int(dn_meta['num_denoising_queries']) if dn_meta else 0
        s_cls, s_box = s_cls[:, :, n_dn:], s_box[:, :, n_dn:]
        if s_cls.shape[2] != self.num_queries:
            raise RuntimeError(
                f'The student head produced {s_cls.shape[2]} matching queries, expected '
                f'num_queries={self.num_queries}; this detector is not supported by '
                f'{type(self).__name__}.')
        return s_cls, s_box

    def _shared_query_outputs(self, taps: OutputTaps, t_dec: dict) -> Tuple[Tensor, Tensor]:
        """Run the student decoder once more, on its own encoder memory, with the teacher's
        queries and reference points; return its head outputs (layers, N, Q_t, ...)."""
        s_dec = single_call(taps['decoder'], 'forward_decoder')
        kwargs = _call_kwargs(s_dec, self.forward_decoder)
        params = inspect.signature(self.forward_decoder).parameters
        for key in ('query', 'query_pos', 'reference_points'):
            if key in t_dec and key in params:
                kwargs[key] = t_dec[key].detach()
        if 'dn_mask' in kwargs:
            kwargs['dn_mask'] = None  # no denoising queries among the shared ones
        out = self.forward_decoder(**kwargs)
        head_params = inspect.signature(self.bbox_head.forward).parameters
        return self.bbox_head(**{k: v for k, v in out.items() if k in head_params})

    def _query_batches(self, s_cls: Tensor, s_box: Tensor, t_cls_raw: Tensor, t_box: Tensor,
                       shared: bool) -> Dict[str, DistillBatch]:
        """Align the queries layer by layer and image by image; one row per aligned pair."""
        n_s, n_t = s_cls.shape[0], t_cls_raw.shape[0]
        if n_s != len(self.layer_weights):
            raise RuntimeError(f'The student head received {n_s} decoder layers, expected '
                               f'{len(self.layer_weights)} (model.layer_weights).')
        activation = detr_activation(self.bbox_head)
        t_cls = self.scale_teacher_logits(t_cls_raw)
        t_conf = foreground_confidence(t_cls_raw, activation)
        rows: Dict[str, List[Tensor]] = {k: [] for k in
                                         ('s_cls', 't_cls', 's_box', 't_box', 'w', 'conf')}
        soft_count, weight_sum = t_cls.new_zeros(()), 0.0
        for layer, w in enumerate(self.layer_weights):
            if w == 0:
                continue
            t_layer = layer if self.teacher_layers == 'same' else n_t - 1
            layer_conf = t_cls.new_zeros(())
            for img in range(s_cls.shape[1]):
                if shared:
                    s_idx = t_idx = torch.arange(t_cls.shape[2], device=t_cls.device)
                else:
                    with torch.no_grad():
                        cost = query_match_cost(s_cls[layer, img], s_box[layer, img],
                                                t_cls[t_layer, img], t_box[t_layer, img],
                                                activation, self.match_costs)
                    s_idx, t_idx = match_queries(cost)
                conf = t_conf[t_layer, img, t_idx]
                rows['s_cls'].append(s_cls[layer, img, s_idx])
                rows['t_cls'].append(t_cls[t_layer, img, t_idx])
                rows['s_box'].append(s_box[layer, img, s_idx])
                rows['t_box'].append(t_box[t_layer, img, t_idx])
                rows['w'].append(conf.new_full(conf.shape, w))
                rows['conf'].append(conf)
                layer_conf = layer_conf + conf.sum()
            soft_count = soft_count + w * layer_conf
            weight_sum += w
        cat = {k: torch.cat(v) for k, v in rows.items()}
        avg_factor = (soft_count / weight_sum).clamp(min=1.0)
        return {'logits': DistillBatch(cat['s_cls'], cat['t_cls'], weight=cat['w'],
                                       avg_factor=avg_factor),
                'boxes': DistillBatch(bbox_cxcywh_to_xyxy(cat['s_box']),
                                      bbox_cxcywh_to_xyxy(cat['t_box']),
                                      weight=cat['w'] * cat['conf'], avg_factor=avg_factor)}


def detection_batches(head, s_cls: Tensor, s_box: Tensor, dets: Sequence[InstanceData],
                      metas: Sequence[dict]) -> Dict[str, DistillBatch]:
    """``'pred_cls'`` / ``'pred_box'``: teacher detections matched to the student's queries by
    its own assigner, on the detached predictions as its ``loss_by_feat`` gives them.

    Args:
        head: The student's DETR-family head (``assigner``, ``num_classes``, ``loss_cls``).
        s_cls, s_box: One decoder layer's class logits (N, Q, K; K + 1 for a softmax head) and
            (cx, cy, w, h) boxes (N, Q, 4), normalised by ``img_shape``; matching queries only.
        dets, metas: Per image, the teacher's detections (xyxy in input pixels, calibrated
            scores) and its metainfo.
    """
    k, softmax = head.num_classes, detr_activation(head) == 'softmax'
    class_weight = getattr(head.loss_cls, 'class_weight', None)
    class_weight = torch.ones(k + 1) if class_weight is None else torch.as_tensor(class_weight)
    targets, rows, hard = [], [], []
    for cls, box, det, meta in zip(s_cls, s_box, dets, metas):
        h, w = meta['img_shape']
        xyxy = bbox_cxcywh_to_xyxy(box) * box.new_tensor([w, h, w, h])
        gt_inds = head.assigner.assign(
            pred_instances=InstanceData(scores=cls.detach(), bboxes=xyxy.detach()),
            gt_instances=InstanceData(bboxes=det.bboxes, labels=det.labels), img_meta=meta).gt_inds
        idx = gt_inds[gt_inds > 0] - 1
        targets.append(softmax_soft_targets(gt_inds, det, k) if softmax else
                       torch.logit(soft_targets(gt_inds, det, k), eps=1e-6))
        hard.append(gt_inds.new_full(gt_inds.shape, k).index_put((gt_inds > 0, ), det.labels[idx]))
        rows.append((xyxy[gt_inds > 0], det.bboxes[idx], det.scores[idx]))
    s_rows, t_rows, weight = (torch.cat(r) for r in zip(*rows))
    num_pos = weight.new_tensor(float(len(weight))).clamp(min=1.0)
    cls = DistillBatch(s_cls.flatten(0, 1), torch.cat(targets), avg_factor=num_pos)
    if softmax:  # as DETR's loss_cls weights hard labels: "no object" by bg_cls_weight
        cls.weight = class_weight.to(weight)[torch.cat(hard)]
        n_neg = len(cls.weight) - len(weight)
        cls.avg_factor = num_pos.new_tensor(len(weight) + n_neg * head.bg_cls_weight).clamp(min=1.0)
    return {'pred_cls': cls,
            'pred_box': DistillBatch(s_rows, t_rows, weight=weight, avg_factor=num_pos)}


def _memory_maps(memory: Tensor, feats: Sequence[Tensor]) -> List[Tensor]:
    """Encoder memory (N, sum(H_l W_l), C) as one (N, C, H_l, W_l) map per level.

    Deformable DETR and DINO encode every feature level, DETR and Conditional DETR only the last.
    """
    shapes = [tuple(f.shape[-2:]) for f in feats]
    n, tokens, c = memory.shape
    if sum(h * w for h, w in shapes) != tokens:
        shapes = shapes[-1:]
        if shapes[0][0] * shapes[0][1] != tokens:
            raise RuntimeError(f'The encoder memory has {tokens} tokens, which matches neither '
                               f'all feature levels {shapes} nor the last one.')
    maps = memory.split([h * w for h, w in shapes], dim=1)
    return [m.permute(0, 2, 1).reshape(n, c, h, w) for m, (h, w) in zip(maps, shapes)]


@MODELS.register_module()
class DistillDETR(DETRDistillerMixin, DETR):
    """A DETR student (softmax head, no-object class); ``query_alignment='hungarian'`` only."""


@MODELS.register_module()
class DistillConditionalDETR(DETRDistillerMixin, ConditionalDETR):
    """A Conditional DETR student (sigmoid head); ``query_alignment='hungarian'`` only."""


@MODELS.register_module()
class DistillDeformableDETR(DETRDistillerMixin, DeformableDETR):
    """A Deformable DETR student (also refined and two-stage); both query alignments."""


@MODELS.register_module()
class DistillDINO(DETRDistillerMixin, DINO):
    """A DINO student (denoising queries left out of KD); both query alignments."""
