"""CIFAR-style backbones (logits + stage features) and the image classifier."""
from .cifar_mobilenet_v2 import CifarMobileNetV2
from .cifar_resnet import CIFAR_RESNET_ARCHS, CifarResNet
from .cifar_shufflenet_v2 import CIFAR_SHUFFLENETV2_SIZES, CifarShuffleNetV2
from .cifar_wide_resnet import CIFAR_WRN_ARCHS, CifarWideResNet
from .image_classifier import (CIFAR100_MEAN, CIFAR100_STD, ImageClassifier,
                               cifar100_data_preprocessor)

__all__ = [
    'CifarResNet', 'CifarWideResNet', 'CifarShuffleNetV2', 'CifarMobileNetV2', 'ImageClassifier',
    'CIFAR_RESNET_ARCHS', 'CIFAR_WRN_ARCHS', 'CIFAR_SHUFFLENETV2_SIZES', 'CIFAR100_MEAN',
    'CIFAR100_STD', 'cifar100_data_preprocessor'
]
