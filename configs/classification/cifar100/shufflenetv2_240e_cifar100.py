# ShuffleNetV2 (CIFAR variant, 1.36M parameters) trained from scratch on CIFAR-100: the student
# baseline.
_base_ = ['./_base_/cifar100.py', './_base_/schedule_240e.py']

model = dict(
    type='ImageClassifier',
    backbone=dict(type='CifarShuffleNetV2', net_size=1.0, num_classes=100))

# lr 0.01 for ShuffleNet/MobileNet students (CRD / mdistiller).
optim_wrapper = dict(optimizer=dict(lr=0.01))
