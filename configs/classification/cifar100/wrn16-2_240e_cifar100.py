# WRN-16-2 (0.70M parameters) trained from scratch on CIFAR-100: the student baseline without
# distillation.
_base_ = ['./_base_/cifar100.py', './_base_/schedule_240e.py']

model = dict(
    type='ImageClassifier',
    backbone=dict(type='CifarWideResNet', arch='wrn_16_2', num_classes=100))
