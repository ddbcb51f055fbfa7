"""CIFAR backbones: output shapes, stage features, and parameter counts.

Parameter counts are checked two ways. (1) Exactly, against a closed-form count written here from
the architecture definitions (ResNet: He et al. 2016; WRN: Zagoruyko & Komodakis 2016; widths as in
RepDistiller ``models/resnet.py`` / ``models/wrn.py``). (2) Within 2%, against the sizes usually
quoted for the CRD/mdistiller benchmark models (resnet8x4 ~1.23M, resnet32x4 ~7.43M, resnet20
~0.28M, resnet56 ~0.86M, resnet110 ~1.73M, wrn_16_2 ~0.70M, wrn_40_2 ~2.26M, ShuffleV2 ~1.36M,
MobileNetV2 ``mobile_half`` (T=6, width 0.5) ~0.81M). Neither the CRD README
(github.com/HobbitLong/RepDistiller) nor the mdistiller README
(github.com/megvii-research/mdistiller) tabulates parameter counts (they list accuracies
only), so (2) is a sanity check on the quoted sizes and (1) is the exact check.
"""
import pytest
import torch

import mmkdcal  # noqa: F401  (registers the models)
from mmdet.registry import MODELS
from mmkdcal.models.classifiers import (CifarMobileNetV2, CifarResNet, CifarShuffleNetV2,
                                        CifarWideResNet)
from mmkdcal.models.classifiers.cifar_shufflenet_v2 import channel_shuffle

torch.set_num_threads(1)

PUBLISHED_MILLIONS = {
    ('CifarResNet', 'resnet20'): 0.28,
    ('CifarResNet', 'resnet56'): 0.86,
    ('CifarResNet', 'resnet110'): 1.73,
    ('CifarResNet', 'resnet8x4'): 1.23,
    ('CifarResNet', 'resnet32x4'): 7.43,
    ('CifarWideResNet', 'wrn_16_2'): 0.70,
    ('CifarWideResNet', 'wrn_40_2'): 2.26,
    ('CifarShuffleNetV2', None): 1.36,
    ('CifarMobileNetV2', None): 0.81,
}


def _build(type_name, arch, num_classes=100):
    cfg = dict(type=type_name, num_classes=num_classes)
    if arch is not None:
        cfg['arch'] = arch
    return MODELS.build(cfg)


def _n_params(model):
    return sum(p.numel() for p in model.parameters())


def resnet_param_formula(depth, widths, num_classes):
    """Closed-form count: conv weights + 2 BN params per channel + projection shortcuts + fc."""
    n = (depth - 2) // 6
    total = 3 * 9 * widths[0] + 2 * widths[0]
    c_in = widths[0]
    for stage, w in enumerate(widths[1:]):
        for j in range(n):
            stride = 2 if (stage > 0 and j == 0) else 1
            total += 9 * c_in * w + 9 * w * w + 4 * w
            if stride != 1 or c_in != w:
                total += c_in * w + 2 * w
            c_in = w
    return total + c_in * num_classes + num_classes


def wrn_param_formula(depth, k, num_classes):
    """Closed-form count of a pre-activation WRN (stem conv has no BN)."""
    n = (depth - 4) // 6
    total = 3 * 9 * 16
    c_in = 16
    for w in (16 * k, 32 * k, 64 * k):
        for _ in range(n):
            total += 2 * c_in + 9 * c_in * w + 2 * w + 9 * w * w
            if c_in != w:
                total += c_in * w
            c_in = w
    return total + 2 * c_in + c_in * num_classes + num_classes


@pytest.mark.parametrize('key', list(PUBLISHED_MILLIONS))
def test_logits_shape_and_published_param_count(key):
    model = _build(*key).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        logits = model(x)
    assert logits.shape == (2, 100)
    n = _n_params(model)
    ref = PUBLISHED_MILLIONS[key] * 1e6
    assert abs(n - ref) / ref < 0.02, f'{key}: {n} parameters vs published {ref:.0f}'


@pytest.mark.parametrize('arch,depth,widths', [
    ('resnet20', 20, (16, 16, 32, 64)),
    ('resnet56', 56, (16, 16, 32, 64)),
    ('resnet8x4', 8, (32, 64, 128, 256)),
    ('resnet32x4', 32, (32, 64, 128, 256)),
])
def test_resnet_param_count_matches_closed_form(arch, depth, widths):
    assert _n_params(CifarResNet(arch=arch, num_classes=100)) == \
        resnet_param_formula(depth, widths, 100)
    # hand-evaluated once for resnet8x4: 928 + 57728 + 230144 + 919040 + 25700
    if arch == 'resnet8x4':
        assert resnet_param_formula(depth, widths, 100) == 1233540


@pytest.mark.parametrize('arch,depth,k', [('wrn_16_2', 16, 2), ('wrn_40_2', 40, 2)])
def test_wrn_param_count_matches_closed_form(arch, depth, k):
    model = CifarWideResNet(arch=arch, num_classes=100)
    assert _n_params(model) == wrn_param_formula(depth, k, 100)


@pytest.mark.parametrize('model,expected', [
    (lambda: CifarResNet(arch='resnet8x4', num_classes=10),
     [(32, 32, 32), (64, 32, 32), (128, 16, 16), (256, 8, 8)]),
    (lambda: CifarWideResNet(arch='wrn_16_2', num_classes=10),
     [(16, 32, 32), (32, 32, 32), (64, 16, 16), (128, 8, 8)]),
    (lambda: CifarShuffleNetV2(num_classes=10),
     [(24, 32, 32), (116, 16, 16), (232, 8, 8), (464, 4, 4)]),
    (lambda: CifarMobileNetV2(num_classes=10),
     [(16, 16, 16), (12, 16, 16), (16, 8, 8), (48, 4, 4), (160, 2, 2)]),
])
def test_forward_features_shapes_and_consistency(model, expected):
    torch.manual_seed(0)
    net = model().eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        pooled, feats = net.forward_features(x)
        logits = net(x)
    assert [tuple(f.shape[1:]) for f in feats] == expected
    assert pooled.shape == (2, net.feat_dim)
    # the classifier reads exactly the pooled feature
    torch.testing.assert_close(net.fc(pooled), logits)
    assert logits.shape == (2, 10)


def test_resnet_from_depth_and_widths_equals_named_arch():
    a = CifarResNet(arch='resnet20')
    b = CifarResNet(depth=20, widths=(16, 16, 32, 64))
    assert _n_params(a) == _n_params(b)


def test_channel_shuffle_hand_case():
    x = torch.arange(6.).view(1, 6, 1, 1)
    # groups of 3: [0 1 2 | 3 4 5] -> interleaved
    assert channel_shuffle(x, 2).flatten().tolist() == [0., 3., 1., 4., 2., 5.]


def test_gradient_reaches_every_parameter():
    net = CifarShuffleNetV2(num_classes=5)
    net(torch.randn(2, 3, 32, 32)).sum().backward()
    missing = [n for n, p in net.named_parameters() if p.grad is None]
    assert missing == []


@pytest.mark.parametrize('ctor,match', [
    (lambda: CifarResNet(arch='resnet9'), 'arch'),
    (lambda: CifarResNet(depth=9, widths=(16, 16, 32, 64)), 'depth'),
    (lambda: CifarResNet(arch='resnet20', depth=20), 'not both'),
    (lambda: CifarResNet(), 'arch'),
    (lambda: CifarResNet(arch='resnet20', num_classes=0), 'num_classes'),
    (lambda: CifarWideResNet(depth=15, widen_factor=2), 'depth'),
    (lambda: CifarWideResNet(arch='wrn_40_3'), 'arch'),
    (lambda: CifarShuffleNetV2(net_size=0.7), 'net_size'),
    (lambda: CifarMobileNetV2(width_mult=0), 'width_mult'),
])
def test_bad_arguments_fail_early(ctor, match):
    with pytest.raises(ValueError, match=match):
        ctor()
