# ResNet-56 (0.86M parameters) trained from scratch on CIFAR-100 (teacher of ResNet-20 in the
# benchmark).
_base_ = ['./_base_/cifar100.py', './_base_/schedule_240e.py']

model = dict(
    type='ImageClassifier',
    backbone=dict(type='CifarResNet', arch='resnet56', num_classes=100))
