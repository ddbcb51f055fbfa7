"""Train a detector or classifier, with or without distillation (the stock MMDetection entry point
plus ``import mmkdcal`` and multi-process CPU support).

Examples:
    python tools/train.py configs/demo/kd-cal_gfl_r18w16_r18w32_digits.py
    python tools/train.py CONFIG --resume                       # resume from the latest checkpoint
    python tools/train.py CONFIG --resume work_dirs/NAME/iter_200.pth
    torchrun --nproc_per_node 2 tools/train.py CONFIG --launcher pytorch

``--resume`` without a path resumes from the newest checkpoint in the work dir, also when its
``last_checkpoint`` file is missing, and refuses when it cannot tell which one that is or when the
work dir holds no checkpoint (a misspelt ``--work-dir``). The work dir is checked for writing,
then locked for the run (a second run on it is refused while the first is alive), and a new run
(no ``--resume``) in a work dir that holds checkpoints is refused rather than writing over them
(:mod:`tools.harness.work_dir`). Once the runner is built, a teacher checkpoint whose classes are
not the student's (names and order) is refused, and so is a checkpoint dir without room for one
checkpoint (a warning when it has room for one but not two).
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmengine.registry import RUNNERS  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

import mmkdcal  # noqa: E402,F401  (registers modules, safe checkpoint loading)
from mmkdcal.utils.checkpoint import install  # noqa: E402
from mmkdcal.utils.work_dir import WorkDirLock  # noqa: E402
from tools.harness.launch import (add_common_args, end_distributed, load_config,  # noqa: E402
                                  setup_cpu_distributed)
from tools.harness.teacher_classes import check_teacher_classes  # noqa: E402
from tools.harness.work_dir import (check_disk_space, check_writable_dir,  # noqa: E402
                                    checkpoint_dir, configure_resume,
                                    refuse_new_run_over_checkpoints)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train a model (mmkdcal)')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--amp', action='store_true', help='enable automatic mixed precision')
    parser.add_argument('--auto-scale-lr', action='store_true', help='scale the LR by batch size')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='resume from this checkpoint, or (no value) from the latest one in the work dir')
    add_common_args(parser)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    cfg = load_config(args)
    if args.amp:
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.loss_scale = 'dynamic'
    if args.auto_scale_lr:
        if not ('auto_scale_lr' in cfg and 'base_batch_size' in cfg.auto_scale_lr):
            raise RuntimeError('--auto-scale-lr needs `auto_scale_lr=dict(base_batch_size=...)` '
                               'in the config.')
        cfg.auto_scale_lr.enable = True
    install()
    configure_resume(cfg, args.resume)
    check_writable_dir(cfg.work_dir)
    with WorkDirLock(cfg.work_dir):
        if args.resume is None:
            refuse_new_run_over_checkpoints(cfg)
        setup_cpu_distributed(cfg)
        runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
        check_teacher_classes(runner.model, cfg)
        check_disk_space(runner.model, cfg, checkpoint_dir(cfg))
        runner.train()
        end_distributed()


if __name__ == '__main__':
    main()
