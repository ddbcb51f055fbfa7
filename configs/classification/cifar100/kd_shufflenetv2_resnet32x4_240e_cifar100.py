# KD (Hinton et al. 2015) ResNet-32x4 -> ShuffleNetV2 on CIFAR-100, mdistiller's setting
# (configs/cifar100/kd.yaml, mdistiller/engine/cfg.py: tau 4, loss = 0.1 CE + 0.9 KD).
_base_ = ['./shufflenetv2_240e_cifar100.py']

model = dict(
    type='DistillImageClassifier',
    teacher_config='configs/classification/cifar100/resnet32x4_240e_cifar100.py',
    # train the teacher with that config first, or point this at your own checkpoint
    teacher_ckpt='work_dirs/resnet32x4_240e_cifar100/epoch_240.pth',
    teacher_temperature=1.0,  # uncalibrated teacher (the -cal variant fits it before training)
    distill_losses=dict(loss_kd=dict(type='KDLoss', inputs='logits', tau=4.0, loss_weight=0.9)),
    ce_loss_weight=0.1)
