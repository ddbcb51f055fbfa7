# DKD (Zhao et al., CVPR 2022) ResNet-32x4 -> ShuffleNetV2 on CIFAR-100, mdistiller's setting
# (mdistiller/engine/cfg.py: CE 1.0, alpha 1.0, tau 4.0, linear warm-up over 20 epochs;
# beta: default BETA 8.0).
# mdistiller warms up per epoch (factor min(epoch / 20, 1)); here per iteration: 20 epochs x 782
# iterations (50,000 images / batch 64, last batch kept).
_base_ = ['./shufflenetv2_240e_cifar100.py']

model = dict(
    type='DistillImageClassifier',
    teacher_config='configs/classification/cifar100/resnet32x4_240e_cifar100.py',
    # train the teacher with that config first, or point this at your own checkpoint
    teacher_ckpt='work_dirs/resnet32x4_240e_cifar100/epoch_240.pth',
    teacher_temperature=1.0,  # uncalibrated teacher (the -cal variant fits it before training)
    distill_losses=dict(
        loss_dkd=dict(
            type='DKDLoss', inputs='logits', alpha=1.0, beta=8.0, tau=4.0, warmup_iters=15640,
            loss_weight=1.0)),
    ce_loss_weight=1.0)
