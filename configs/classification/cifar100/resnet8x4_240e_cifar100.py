# ResNet-8x4 (1.23M parameters) trained from scratch on CIFAR-100: the student baseline without
# distillation.
_base_ = ['./_base_/cifar100.py', './_base_/schedule_240e.py']

model = dict(
    type='ImageClassifier',
    backbone=dict(type='CifarResNet', arch='resnet8x4', num_classes=100))
