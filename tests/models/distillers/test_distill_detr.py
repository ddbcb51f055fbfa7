"""The DETR-family distillers: query alignment (planted permutations, shared queries), the
temperature and the normaliser by hand, plain student checkpoints, build-time refusals."""
import copy

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import ConfigDict

from mmdet.registry import MODELS

import mmkdcal  # noqa: F401
from mmkdcal.models.distillers.query_matching import match_queries, query_match_cost

from _detr_helpers import deformable_detr_model, detr_distiller, detr_model, dino_model
from _helpers import batch as _batch
from _helpers import dump_config, retinanet_model

torch.set_num_threads(1)

ZERO_FLOOR_LOSSES = dict(  # losses whose value is 0 when the student predicts the teacher
    loss_bkd=dict(type='BinaryKDLoss', inputs='logits', beta=1.0),
    loss_box=dict(type='BoxKDLoss', inputs='boxes', l1_weight=5.0, giou_weight=2.0))
SOFTMAX_LOSSES = dict(
    loss_kd=dict(type='KDLoss', inputs='logits', tau=1.0),
    loss_box=dict(type='BoxKDLoss', inputs='boxes', l1_weight=5.0, giou_weight=2.0))
BCE_LOSS = dict(loss_bce=dict(type='BinaryKDLoss', inputs='logits', beta=0.0))


def _perturb_heads(model, seed):
    """Random box and class layers: MMDetection initialises the last box layer of Deformable
    DETR and DINO to zero (boxes = reference points) and the class biases to p = 0.01."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.bbox_head.named_parameters():
            if 'reg' in name:  # keeps boxes away from zero width (where GIoU is degenerate)
                p.add_(0.5 / p.shape[-1]**0.5 * torch.randn(p.shape, generator=g))
            elif 'cls' in name and name.endswith('bias'):
                p.copy_(torch.randn(p.shape, generator=g))


def _teacher(cfg, tmp_path, name='teacher', seed=1):
    """A teacher with random weights, saved as config + checkpoint."""
    torch.manual_seed(seed)
    teacher = MODELS.build(ConfigDict(copy.deepcopy(cfg)))
    teacher.init_weights()
    _perturb_heads(teacher, seed)
    path = dump_config(dict(model=cfg), str(tmp_path / f'{name}.py'))
    ckpt = str(tmp_path / f'{name}.pth')
    torch.save({'state_dict': teacher.state_dict(), 'meta': {}}, ckpt)
    return path, ckpt, teacher


def _copy_of(model, teacher, perm=None):
    """Load the teacher's weights into ``model``, with the query embedding rows permuted."""
    state = {k: v.clone() for k, v in teacher.state_dict().items()}
    if perm is not None:
        state['query_embedding.weight'] = state['query_embedding.weight'][perm]
    model.load_state_dict(state, strict=True)
    return model


def _head_outputs(model, data):
    was_training = model.training
    model.eval()  # the head inputs of inference (no denoising queries)
    with torch.no_grad():
        feats = model.extract_feat(data['inputs'])
        out = model.bbox_head(**model.forward_transformer(feats, data['data_samples']))
    model.train(was_training)
    return out


# ---------------------------------------------------------------------------------- matching
@pytest.mark.parametrize('activation', ['sigmoid', 'softmax'])
def test_matching_recovers_a_planted_permutation(activation):
    g = torch.Generator().manual_seed(0)
    t_logits = torch.randn(12, 4, generator=g) * 3
    t_boxes = torch.cat([torch.rand(12, 2, generator=g) * 0.6 + 0.2,
                         torch.rand(12, 2, generator=g) * 0.3 + 0.05], 1)
    perm = torch.randperm(12, generator=g)
    cost = query_match_cost(t_logits[perm], t_boxes[perm], t_logits, t_boxes, activation,
                            dict(cls=2.0, l1=5.0, giou=2.0))
    # the planted pairs cost exactly -2 (KL 0, L1 0, GIoU 1), every other pair more
    s_of_t = torch.argsort(perm)  # student row holding teacher query j
    assert torch.allclose(cost[s_of_t, torch.arange(12)], torch.full((12, ), -2.0), atol=1e-4)
    s_idx, t_idx = match_queries(cost)
    assert torch.equal(t_idx, torch.arange(12)) and torch.equal(s_idx, s_of_t)
    # the classification term is the KL divergence (hand-computed for one pair)
    kl = query_match_cost(t_logits[:1], t_boxes[:1], t_logits[1:2], t_boxes[1:2], activation,
                          dict(cls=1.0, l1=0.0, giou=0.0))
    if activation == 'sigmoid':
        q, p = t_logits[1].sigmoid(), t_logits[0].sigmoid()
        want = (q * (q / p).log() + (1 - q) * ((1 - q) / (1 - p)).log()).sum()
    else:
        q, p = t_logits[1].softmax(0), t_logits[0].softmax(0)
        want = (q * (q / p).log()).sum()
    assert kl.item() == pytest.approx(want.item(), rel=1e-4)


def test_rectangular_matching_uses_every_teacher_query_once():
    cost = torch.tensor([[0.0, 5.0], [1.0, 0.5], [4.0, 4.0]])  # 3 student, 2 teacher queries
    s_idx, t_idx = match_queries(cost)
    assert t_idx.tolist() == [0, 1] and s_idx.tolist() == [0, 1]


# ---------------------------------------------------------------------------------- hungarian
def _bce_by_hand(t_logits, temperature, layer_weights):
    """BinaryKDLoss(beta=0) of a student that predicts what the teacher predicts: per row the
    BCE of sigmoid(t) against sigmoid(t / T), the layer weights, the soft-count normaliser."""
    total, count = 0.0, 0.0
    for w, layer in zip(layer_weights, t_logits):
        bce = F.binary_cross_entropy_with_logits(layer, (layer / temperature).sigmoid(),
                                                 reduction='sum')
        total += w * bce
        count += w * layer.sigmoid().max(-1).values.sum()
    return total / max(count / sum(layer_weights), 1.0)


@pytest.mark.parametrize('family', ['deformable', 'detr'])
def test_hungarian_kd_of_a_permuted_copy_equals_the_unpermuted_pair(tmp_path, family):
    """Student = teacher with its queries permuted: the Hungarian KD losses equal those of the
    unpermuted copy, are 0 for the losses whose floor is 0, and match the hand computation."""
    cfg = deformable_detr_model() if family == 'deformable' else detr_model()
    path, ckpt, teacher = _teacher(cfg, tmp_path)
    perm = torch.randperm(cfg['num_queries'], generator=torch.Generator().manual_seed(3))
    losses = dict(ZERO_FLOOR_LOSSES) if family == 'deformable' else dict(SOFTMAX_LOSSES)
    if family == 'deformable':
        losses.update(BCE_LOSS)
    weights = [0.5, 1.0]
    results = {}
    for temperature in (1.0, 2.0):
        for name, p in (('copy', None), ('permuted', perm)):
            model = detr_distiller(cfg, path, ckpt, teacher_temperature=temperature,
                                   layer_weights=weights, distill_losses=losses)
            _copy_of(model, teacher, p).train()
            data = _batch(model, n=2, size=64, seed=5)
            if name == 'permuted':  # the planted premise: the outputs are the teacher's, permuted
                s_cls, s_box = _head_outputs(model, data)
                t_cls, t_box = _head_outputs(teacher, data)
                assert torch.allclose(s_cls, t_cls[:, :, perm], atol=1e-5)
                assert torch.allclose(s_box, t_box[:, :, perm], atol=1e-5)
                assert not torch.allclose(s_cls, t_cls, atol=1e-3)
            out = model.loss(data['inputs'], data['data_samples'])
            results[temperature, name] = {k: out[k].item() for k in losses}
    for temperature in (1.0, 2.0):
        for key in losses:
            assert results[temperature, 'permuted'][key] == pytest.approx(
                results[temperature, 'copy'][key], rel=1e-4, abs=1e-4), (temperature, key)
    for key in ('loss_bkd', 'loss_box', 'loss_kd'):
        if key in losses:  # floor 0: the matched copy predicts exactly the teacher's targets
            assert abs(results[1.0, 'permuted'][key]) < 1e-4, key
            if key != 'loss_box':  # the temperature moves the targets away from the student
                assert results[2.0, 'permuted'][key] > 1e-3, key
    if family == 'deformable':
        t_cls, _ = _head_outputs(teacher, data)
        for temperature in (1.0, 2.0):
            assert results[temperature, 'permuted']['loss_bce'] == pytest.approx(
                _bce_by_hand(t_cls, temperature, weights).item(), rel=1e-4)


def test_teacher_layers_last_and_layer_weights(tmp_path):
    """A 2-layer student learns from a 3-layer teacher's final layer; a layer of weight 0 is
    left out (hand computation of the copy's BCE KD, layer by layer)."""
    t_cfg = deformable_detr_model(dec_layers=3)
    path, ckpt, teacher = _teacher(t_cfg, tmp_path)
    s_cfg = deformable_detr_model(dec_layers=2)
    with pytest.raises(ValueError, match="teacher_layers='same' pairs decoder layer"):
        detr_distiller(s_cfg, path, ckpt, teacher_temperature=1.0, distill_losses=BCE_LOSS)
    model = detr_distiller(s_cfg, path, ckpt, teacher_temperature=1.5, teacher_layers='last',
                           layer_weights=[0.0, 2.0], distill_losses=BCE_LOSS)
    model.train()
    data = _batch(model, n=2, size=64, seed=1)
    with torch.no_grad():
        out = model.loss(data['inputs'], data['data_samples'])
    s_cls, _ = _head_outputs(model, data)
    t_cls, _ = _head_outputs(teacher, data)
    # the last student layer against the teacher's last layer, matched per image
    total, count = 0.0, 0.0
    s_box, t_box = _head_outputs(model, data)[1], _head_outputs(teacher, data)[1]
    for img in range(2):
        cost = query_match_cost(s_cls[1, img], s_box[1, img], t_cls[2, img] / 1.5,
                                t_box[2, img], 'sigmoid', model.match_costs)
        s_idx, t_idx = match_queries(cost)
        target = (t_cls[2, img, t_idx] / 1.5).sigmoid()
        total += 2.0 * F.binary_cross_entropy_with_logits(s_cls[1, img, s_idx], target,
                                                          reduction='sum')
        count += 2.0 * t_cls[2, img].sigmoid().max(-1).values.sum()
    assert out['loss_bce'].item() == pytest.approx((total / max(count / 2.0, 1.0)).item(),
                                                   rel=1e-4)
    with pytest.raises(ValueError, match='layer_weights has 3 values but the student decoder '
                                         'has 2 layers'):
        detr_distiller(s_cfg, path, ckpt, teacher_temperature=1.0, teacher_layers='last',
                       layer_weights=[1, 1, 1], distill_losses=BCE_LOSS)


# ---------------------------------------------------------------------------------- shared
def _record_decoder_calls(module, calls):
    def hook(_module, args, kwargs):
        calls.append({k: v.detach().clone() for k, v in kwargs.items()
                      if k in ('query', 'query_pos', 'reference_points') and v is not None})
    return module.register_forward_pre_hook(hook, with_kwargs=True)


@pytest.mark.parametrize('family', ['deformable', 'dino'])
def test_shared_queries_go_through_both_decoders(tmp_path, family):
    """The student decoder's distillation pass receives exactly the teacher decoder's queries
    and reference points; a student that copies the teacher then has zero KD loss."""
    cfg = deformable_detr_model() if family == 'deformable' else dino_model()
    path, ckpt, teacher = _teacher(cfg, tmp_path)
    s_cfg = copy.deepcopy(cfg)
    s_cfg['backbone']['base_channels'] = 4  # a different student
    s_cfg['neck']['in_channels'] = [16, 32]
    values = {}
    for student_cfg, copy_teacher in ((s_cfg, False), (cfg, True)):
        model = detr_distiller(student_cfg, path, ckpt, teacher_temperature=1.0,
                               query_alignment='shared_queries', distill_losses=ZERO_FLOOR_LOSSES)
        _perturb_heads(model, seed=7)
        if copy_teacher:
            _copy_of(model, teacher)
        model.train()
        s_calls, t_calls = [], []
        handles = [_record_decoder_calls(model.decoder, s_calls),
                   _record_decoder_calls(model.teacher.decoder, t_calls)]
        data = _batch(model, n=2, size=64, seed=2)
        out = model.loss(data['inputs'], data['data_samples'])
        for h in handles:
            h.remove()
        assert len(t_calls) == 1 and len(s_calls) == 2  # stock pass + distillation pass
        assert set(s_calls[1]) == set(t_calls[0]) >= {'query', 'reference_points'}
        for key, value in t_calls[0].items():
            assert torch.equal(s_calls[1][key], value), key
        if family == 'dino':  # the stock pass had the denoising queries in front
            assert s_calls[0]['query'].shape[1] > t_calls[0]['query'].shape[1]
        values[copy_teacher] = {k: out[k].item() for k in ZERO_FLOOR_LOSSES}
        if not copy_teacher:
            out['loss_bkd'].backward()  # the distillation pass trains the student decoder
            assert model.decoder.layers[0].cross_attn.value_proj.weight.grad.abs().sum() > 0
    assert values[True]['loss_bkd'] < 1e-5 and values[True]['loss_box'] < 1e-3  # GIoU's eps
    assert values[False]['loss_bkd'] > 1e-2 and values[False]['loss_box'] > 1e-2


# ---------------------------------------------------------------------------------- plumbing
def test_dino_student_checkpoint_is_a_plain_dino_checkpoint(tmp_path):
    cfg = dino_model()
    path, ckpt, teacher = _teacher(cfg, tmp_path)
    model = detr_distiller(cfg, path, ckpt, teacher_temperature=1.0, distill_losses=dict(
        ZERO_FLOOR_LOSSES, loss_mem=dict(type='FeatureMSELoss', inputs='memory')))
    stock = MODELS.build(ConfigDict(copy.deepcopy(cfg)))
    assert set(model.state_dict()) == set(stock.state_dict())
    assert not any(k.startswith('teacher') for k in model.state_dict())
    assert sum(p.numel() for p in model.parameters()) == sum(
        p.numel() for p in stock.parameters())
    torch.save({'state_dict': model.state_dict()}, tmp_path / 'student.pth')
    state = torch.load(tmp_path / 'student.pth', weights_only=True)['state_dict']
    result = stock.load_state_dict(state, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    # the memory input is one (N, C, H, W) map per level: strides 16 and 32 of a 64 px batch
    # (the student's heads perturbed and the denoising noise seeded, as in the other loss tests)
    _perturb_heads(model, seed=5)
    torch.manual_seed(0)
    model.train()
    data = _batch(model, n=2, size=64)
    batches = {}
    orig = model._distill_batches

    def keep(*args):
        batches.update(orig(*args))
        return batches
    model._distill_batches = keep
    model.loss(data['inputs'], data['data_samples'])
    shapes = [tuple(m.shape) for m in batches['memory'].student]
    assert shapes == [(2, 256, 4, 4), (2, 256, 2, 2)]
    # rows: 2 images x 2 layers x 8 matching queries (DINO's 8 denoising queries left out)
    assert batches['logits'].student.shape == (32, 3)
    assert batches['boxes'].student.shape == (32, 4)
    assert torch.all(batches['boxes'].teacher[:, 2:] >= batches['boxes'].teacher[:, :2])


def test_build_time_refusals(tmp_path):
    deform = deformable_detr_model()
    d_path, d_ckpt, _ = _teacher(deform, tmp_path, 'deform')
    r_path, r_ckpt, _ = _teacher(retinanet_model(), tmp_path, 'retina')
    with pytest.raises(ValueError, match="teacher RetinaHead / student DeformableDETRHead: .*; "
                                         "inputs='logits' needs the same head layout"):
        detr_distiller(deform, r_path, r_ckpt, teacher_temperature=1.0,
                       distill_losses=ZERO_FLOOR_LOSSES)
    detr = detr_model()
    with pytest.raises(ValueError, match='Head-family mismatch: the student DETRHead scores '
                                         'classes with softmax, the teacher DeformableDETRHead '
                                         'with sigmoid'):
        detr_distiller(detr, d_path, d_ckpt, teacher_temperature=1.0,
                       distill_losses=SOFTMAX_LOSSES)
    with pytest.raises(ValueError, match='Class-count mismatch: the student head predicts 4 '
                                         'class logits per query, the teacher 3'):
        detr_distiller(deformable_detr_model(num_classes=4), d_path, d_ckpt,
                       teacher_temperature=1.0, distill_losses=ZERO_FLOOR_LOSSES)
    # loss / input pairs that cannot work
    with pytest.raises(ValueError, match='KDLoss treats logits as softmax'):
        detr_distiller(deform, d_path, d_ckpt, teacher_temperature=1.0,
                       distill_losses=dict(loss_kd=dict(type='KDLoss', inputs='logits')))
    detr_path, detr_ckpt, _ = _teacher(detr, tmp_path, 'detr')
    with pytest.raises(ValueError, match='BinaryKDLoss treats logits as sigmoid'):
        detr_distiller(detr, detr_path, detr_ckpt, teacher_temperature=1.0,
                       distill_losses=dict(loss_b=dict(type='BinaryKDLoss', inputs='logits')))
    # shared queries: refused where the decoder takes no external queries ...
    with pytest.raises(ValueError, match="query_alignment='shared_queries' feeds the teacher's "
                                         'decoder queries.*the DETR decoder starts from its own'):
        detr_distiller(detr, detr_path, detr_ckpt, teacher_temperature=1.0,
                       query_alignment='shared_queries', distill_losses=SOFTMAX_LOSSES)
    cond = detr_model(conditional=True)
    c_path, c_ckpt, _ = _teacher(cond, tmp_path, 'cond')
    with pytest.raises(ValueError, match='the ConditionalDETR decoder starts from its own'):
        detr_distiller(cond, c_path, c_ckpt, teacher_temperature=1.0,
                       query_alignment='shared_queries', distill_losses=ZERO_FLOOR_LOSSES)
    # ... across families (Hungarian works across them) ...
    with pytest.raises(ValueError, match='the student is DINO, the teacher DeformableDETR'):
        detr_distiller(dino_model(), d_path, d_ckpt, teacher_temperature=1.0,
                       query_alignment='shared_queries', distill_losses=ZERO_FLOOR_LOSSES)
    detr_distiller(cond, d_path, d_ckpt, teacher_temperature=1.0,
                   distill_losses=ZERO_FLOOR_LOSSES)
    # ... and with query widths that differ
    wide = deformable_detr_model(dims=64)
    w_path, w_ckpt, _ = _teacher(wide, tmp_path, 'wide')
    with pytest.raises(ValueError, match=r"Query-dimension mismatch: .*teacher's decoder "
                                         r'queries \(64 channels\) through the student decoder '
                                         r'\(32 channels'):
        detr_distiller(deform, w_path, w_ckpt, teacher_temperature=1.0,
                       query_alignment='shared_queries', distill_losses=ZERO_FLOOR_LOSSES)
    model = detr_distiller(deform, w_path, w_ckpt, teacher_temperature=1.0,
                           distill_losses=ZERO_FLOOR_LOSSES)  # Hungarian compares outputs only
    with pytest.raises(ValueError, match='32 student and 64 teacher channels'):
        detr_distiller(deform, w_path, w_ckpt, teacher_temperature=1.0,
                       distill_losses=dict(loss_m=dict(type='FeatureMSELoss', inputs='memory')))
    assert model.query_alignment == 'hungarian'
    with pytest.raises(ValueError, match="model.query_alignment must be one of"):
        detr_distiller(deform, d_path, d_ckpt, teacher_temperature=1.0,
                       query_alignment='fixed', distill_losses=ZERO_FLOOR_LOSSES)
