# The CIFAR-100 distillation schedule of CRD (Tian et al., ICLR 2020) and mdistiller
# (configs/cifar100/*.yaml, mdistiller/engine/cfg.py): SGD, momentum 0.9, weight decay 5e-4,
# batch 64 on one GPU, 240 epochs, learning rate x0.1 at epochs 150, 180 and 210; lr 0.05
# (0.01 for ShuffleNet / MobileNet students, set in their configs).
default_scope = 'mmdet'
custom_imports = dict(imports=['mmkdcal'], allow_failed_imports=False)

train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=240, val_interval=5)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.05, momentum=0.9, weight_decay=5e-4))
param_scheduler = [
    dict(type='MultiStepLR', by_epoch=True, milestones=[150, 180, 210], gamma=0.1)
]
# The learning rates above are for a total batch of 64 (one GPU x 64). With N GPUs, either set
# train_dataloader.batch_size=64 // N or enable this (`--auto-scale-lr` in tools/train.py).
auto_scale_lr = dict(enable=False, base_batch_size=64)

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=100),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # epoch_240.pth is what the distillation configs load as `teacher_ckpt`;
    # AtomicCheckpointHook (mmkdcal): CheckpointHook with atomic saves
    checkpoint=dict(type='AtomicCheckpointHook', interval=40, max_keep_ckpts=2,
                    save_best='accuracy/top1', rule='greater'),
    sampler_seed=dict(type='DistSamplerSeedHook'))

env_cfg = dict(
    cudnn_benchmark=True,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'))
log_processor = dict(type='LogProcessor', window_size=50, by_epoch=True)
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='Visualizer', vis_backends=vis_backends, name='visualizer')
log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=None)
