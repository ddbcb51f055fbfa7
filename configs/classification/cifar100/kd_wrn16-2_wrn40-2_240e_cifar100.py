# KD (Hinton et al. 2015) WRN-40-2 -> WRN-16-2 on CIFAR-100, mdistiller's setting
# (configs/cifar100/kd.yaml, mdistiller/engine/cfg.py: tau 4, loss = 0.1 CE + 0.9 KD).
_base_ = ['./wrn16-2_240e_cifar100.py']

model = dict(
    type='DistillImageClassifier',
    teacher_config='configs/classification/cifar100/wrn40-2_240e_cifar100.py',
    # train the teacher with that config first, or point this at your own checkpoint
    teacher_ckpt='work_dirs/wrn40-2_240e_cifar100/epoch_240.pth',
    teacher_temperature=1.0,  # uncalibrated teacher (the -cal variant fits it before training)
    distill_losses=dict(loss_kd=dict(type='KDLoss', inputs='logits', tau=4.0, loss_weight=0.9)),
    ce_loss_weight=0.1)
