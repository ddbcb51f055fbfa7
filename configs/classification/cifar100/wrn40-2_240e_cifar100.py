# WRN-40-2 (2.26M parameters) trained from scratch on CIFAR-100; teacher of the wrn16-2
# distillation configs.
_base_ = ['./_base_/cifar100.py', './_base_/schedule_240e.py']

model = dict(
    type='ImageClassifier',
    backbone=dict(type='CifarWideResNet', arch='wrn_40_2', num_classes=100))
