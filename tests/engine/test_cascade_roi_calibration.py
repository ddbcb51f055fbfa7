"""``fit_on='rois'``: the first stage's sampled RoIs, recorded from the model's own code.

A Cascade R-CNN whose backbone, neck, RPN and stage-0 box head carry a Faster R-CNN's weights (and
whose stage-0 assigner/sampler are the Faster R-CNN's) must give exactly the Faster R-CNN's RoI
records; changing the later stages changes nothing, changing stage 0 changes the logits. The
records are those of mmdet's own RPN, assigner, sampler and RoI head called one by one, and a
mask branch needs no ground-truth masks.
"""
import copy

import pytest
import torch
from mmengine.config import ConfigDict

import mmkdcal  # noqa: F401
from mmdet.registry import MODELS
from mmdet.structures.bbox import bbox2roi
from mmkdcal.engine.calibration_modes import (CalibrationContext, get_calibration_mode, image_key,
                                              key_hash)

from _families import tiny_model
from _helpers import batch

torch.set_num_threads(1)


def _pair(family='cascade_rcnn'):
    """A Faster R-CNN and a ``family`` model carrying its weights where they share parts (a
    cascade: in stage 0, with the Faster R-CNN's stage-0 assigner/sampler)."""
    faster = tiny_model('faster_rcnn')
    other = tiny_model(family)
    cascade = isinstance(other['train_cfg']['rcnn'], list)
    if cascade:
        other['train_cfg']['rcnn'][0] = copy.deepcopy(faster['train_cfg']['rcnn'])
    other['train_cfg']['rpn_proposal'] = copy.deepcopy(faster['train_cfg']['rpn_proposal'])
    torch.manual_seed(0)
    f_model = MODELS.build(ConfigDict(faster))
    f_model.init_weights()
    o_model = MODELS.build(ConfigDict(other))
    o_model.init_weights()
    state = o_model.state_dict()
    for key, value in f_model.state_dict().items():
        target = key.replace('roi_head.bbox_head.', 'roi_head.bbox_head.0.') if cascade else key
        if cascade and 'fc_reg' in key:  # class-agnostic in the cascade: logits do not use it
            continue
        assert state[target].shape == value.shape, target
        state[target] = value.clone()
    o_model.load_state_dict(state, strict=True)
    return f_model.eval(), o_model.eval()


class _BatchGroundTruth:
    """The batch's own boxes as the ground truth (no crowd boxes)."""

    @staticmethod
    def in_input_frame(sample):
        boxes = sample.gt_instances.bboxes
        return boxes, sample.gt_instances.labels, torch.zeros(len(boxes), dtype=torch.bool)


def _records(model, data):
    mode = get_calibration_mode('rois')
    assert mode.supports(model) is None
    ctx = CalibrationContext(seed=3, ground_truth=_BatchGroundTruth())
    with torch.no_grad():
        return mode.collect(model, data, ctx)


def test_cascade_rois_are_its_first_stage_through_its_own_code():
    f_model, c_model = _pair()
    data = batch(f_model, n=2, size=128)
    for i, sample in enumerate(data['data_samples']):
        sample.set_metainfo(dict(img_id=i))
    want = _records(f_model, data)
    got = _records(c_model, data)
    assert [k for k, _ in got] == [k for k, _ in want]
    for (_, g), (_, w) in zip(got, want):
        assert g['logits'].shape[1] == 3 + 1 and len(g['labels']) > 0
        assert torch.equal(g['labels'], w['labels'])
        assert torch.allclose(g['logits'], w['logits'], atol=1e-6)
    # later stages play no part; stage 0 does
    with torch.no_grad():
        for p in c_model.roi_head.bbox_head[2].parameters():
            p.add_(1.0)
    for (_, g), (_, w) in zip(_records(c_model, data), want):
        assert torch.allclose(g['logits'], w['logits'], atol=1e-6)
    with torch.no_grad():
        c_model.roi_head.bbox_head[0].fc_cls.bias.add_(1.0)
    for (_, g), (_, w) in zip(_records(c_model, data), want):
        assert not torch.allclose(g['logits'], w['logits'], atol=1e-3)


def _by_hand(model, data, seed):
    """The reference: mmdet's RPN, assigner, sampler, RoI forward and target function called
    one by one per image, each image's sampler seeded as the mode seeds it."""
    samples = data['data_samples']
    feats = model.extract_feat(data['inputs'])
    proposals = model.rpn_head.predict_by_feat(
        *model.rpn_head(feats), batch_img_metas=[s.metainfo for s in samples],
        cfg=model.train_cfg.rpn_proposal, rescale=False)
    roi_head, out = model.roi_head, []
    for i, (props, sample) in enumerate(zip(proposals, samples)):
        props.priors = props.pop('bboxes')
        gt = sample.gt_instances
        assign = roi_head.bbox_assigner.assign(props, gt, None)
        torch.manual_seed(seed * 1_000_003 + key_hash(image_key(sample)))
        res = roi_head.bbox_sampler.sample(assign, props, gt, feats=[f[i][None] for f in feats])
        rois = bbox2roi([res.priors])
        rois[:, 0] = i
        logits = roi_head._bbox_forward(feats, rois)['cls_score']
        labels = roi_head.bbox_head.get_targets([res], model.train_cfg.rcnn)[0]
        out.append((logits, labels))
    return out


def test_rois_are_what_mmdet_samples_and_labels():
    """The RoIs recorded from the model's own loss path are the ones mmdet's sampler picks for
    the image's seed: the same labels and logits as calling mmdet's parts one by one; the
    caller's random state is left as it was."""
    f_model, _ = _pair()
    data = batch(f_model, n=2, size=128)
    for i, sample in enumerate(data['data_samples']):
        sample.set_metainfo(dict(img_id=i))
    with torch.no_grad():
        want = _by_hand(f_model, data, seed=3)
    torch.manual_seed(123)
    got = _records(f_model, data)
    after = torch.rand(3)
    torch.manual_seed(123)
    assert torch.equal(after, torch.rand(3))
    for (_, g), (w_logits, w_labels) in zip(got, want):
        assert len(g['labels']) > 0 and (g['labels'] < 3).any() and (g['labels'] == 3).any()
        assert torch.equal(g['labels'], w_labels)
        assert torch.allclose(g['logits'], w_logits, atol=1e-5)


@pytest.mark.parametrize('family', ['mask_rcnn', 'cascade_mask_rcnn'])
def test_rois_of_a_mask_model_need_no_masks(family):
    """With a mask branch (and no ground-truth masks: the dataset's boxes only), the records are
    the Faster R-CNN's: the pass ends once the first stage has classified its RoIs."""
    f_model, m_model = _pair(family)
    data = batch(f_model, n=2, size=128)
    for i, sample in enumerate(data['data_samples']):
        sample.set_metainfo(dict(img_id=i))
    for (_, g), (_, w) in zip(_records(m_model, data), _records(f_model, data)):
        assert torch.equal(g['labels'], w['labels'])
        assert torch.allclose(g['logits'], w['logits'], atol=1e-6)
