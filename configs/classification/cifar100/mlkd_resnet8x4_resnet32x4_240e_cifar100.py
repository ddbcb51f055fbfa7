# MLKD (multi-level logit distillation, Jin et al., CVPR 2023) ResNet-32x4 -> ResNet-8x4 on
# CIFAR-100. Settings from the authors' code (github.com/Jin-Ying/Multi-Level-Logit-Distillation,
# configs/cifar100/ours/*.yaml and mdistiller/engine/cfg.py): temperatures 2-6, loss weights
# 0.1 CE + 0.9 per term, lr 0.025. Their code *sums* the terms over the 5 temperatures while
# MLKDLoss averages them, hence the x5 level weights. Differences from their code: one
# (standard-augmentation) view instead of a weak + strong pair, no per-batch median confidence
# mask (min_teacher_conf=None), 240 epochs for every pair.
_base_ = ['./resnet8x4_240e_cifar100.py']

model = dict(
    type='DistillImageClassifier',
    teacher_config='configs/classification/cifar100/resnet32x4_240e_cifar100.py',
    # train the teacher with that config first, or point this at your own checkpoint
    teacher_ckpt='work_dirs/resnet32x4_240e_cifar100/epoch_240.pth',
    teacher_temperature=1.0,  # uncalibrated teacher (the -cal variant fits it before training)
    distill_losses=dict(
        loss_mlkd=dict(
            type='MLKDLoss',
            inputs='logits',
            temperatures=(2.0, 3.0, 4.0, 5.0, 6.0),
            instance_weight=5.0,
            batch_weight=5.0,
            class_weight=5.0,
            min_teacher_conf=None,
            loss_weight=0.9)),
    ce_loss_weight=0.1)
optim_wrapper = dict(optimizer=dict(lr=0.025))
