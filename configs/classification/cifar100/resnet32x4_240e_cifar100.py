# ResNet-32x4 (7.43M parameters) trained from scratch on CIFAR-100; teacher of the resnet8x4 and
# shufflenetv2 distillation configs.
_base_ = ['./_base_/cifar100.py', './_base_/schedule_240e.py']

model = dict(
    type='ImageClassifier',
    backbone=dict(type='CifarResNet', arch='resnet32x4', num_classes=100))
