"""Evaluate a checkpoint (the stock MMDetection entry point plus ``import mmkdcal``).

The checkpoint must fit the config's model exactly (every weight present, same shapes, nothing
else): MMEngine alone would warn and evaluate random weights.

Example:
    python tools/test.py configs/demo/gfl_r18w16_digits.py \
        work_dirs/kd_gfl_r18w16_r18w32_digits/iter_400.pth
"""
import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmengine.model import is_model_wrapper  # noqa: E402
from mmengine.registry import RUNNERS  # noqa: E402
from mmengine.runner import Runner  # noqa: E402
from mmengine.runner.checkpoint import CheckpointLoader  # noqa: E402

import mmkdcal  # noqa: E402,F401
from mmkdcal.utils.checkpoint import check_complete, install  # noqa: E402
from tools.harness.launch import (add_common_args, end_distributed, load_config,  # noqa: E402
                                  setup_cpu_distributed)
from tools.harness.trained_model import check_checkpoint_matches  # noqa: E402
from tools.harness.trained_model import checkpoint_state_dict  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test (and evaluate) a model (mmkdcal)')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--out', help='dump predictions to a .pkl file for offline evaluation')
    parser.add_argument('--metrics-out', help='write the evaluation metrics to this JSON file')
    add_common_args(parser)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    install()
    cfg = load_config(args)
    is_url = args.checkpoint.startswith(('http://', 'https://'))
    if not is_url:
        if not osp.isfile(args.checkpoint):
            raise FileNotFoundError(f'checkpoint {args.checkpoint!r} does not exist.')
        check_complete(args.checkpoint)
    cfg.load_from = args.checkpoint
    setup_cpu_distributed(cfg)
    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    model = runner.model.module if is_model_wrapper(runner.model) else runner.model
    state_dict = checkpoint_state_dict(
        CheckpointLoader.load_checkpoint(args.checkpoint, map_location='cpu'), args.checkpoint)
    check_checkpoint_matches(model, state_dict, args.checkpoint, args.config)
    if args.out is not None:
        if not args.out.endswith(('.pkl', '.pickle')):
            raise ValueError(f'--out must end with .pkl or .pickle, got {args.out!r}.')
        from mmdet.evaluation import DumpDetResults
        runner.test_evaluator.metrics.append(DumpDetResults(out_file_path=args.out))
    metrics = runner.test()
    end_distributed()
    if args.metrics_out:
        import json
        os.makedirs(osp.dirname(osp.abspath(args.metrics_out)), exist_ok=True)
        with open(args.metrics_out, 'w') as f:
            json.dump({k: float(v) if isinstance(v, (int, float)) else v
                       for k, v in metrics.items()}, f, indent=2)
    return metrics


if __name__ == '__main__':
    main()
