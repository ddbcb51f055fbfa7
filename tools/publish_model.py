"""Release one training checkpoint: the plain student's weights and meta, sha256 in the name.

Drops the optimizer, parameter schedulers, message hub and every weight the plain student does
not have (distillation-only modules), checks the rest against the student's ``state_dict`` and
writes ``OUT_DIR/<name>-<sha256[:8]>.pth`` (see docs/benchmark.md).

Example:
    python tools/publish_model.py work_dirs/kd-cal_gfl_r50_r101_1x_coco/epoch_12.pth release \\
        --config configs/gfl/kd-cal_gfl_r50_r101_1x_coco.py
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from tools.harness.matrix.release import plain_student_keys, release_checkpoint  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Release a checkpoint (mmkdcal)')
    parser.add_argument('checkpoint', help='training checkpoint')
    parser.add_argument('out_dir', help='where the released file goes')
    parser.add_argument('--config', required=True,
                        help='the config it was trained with (distiller or plain model)')
    parser.add_argument('--student-config', default=None,
                        help='take the plain student from this config instead (e.g. '
                             'mmdet::gfl/gfl_r50_fpn_1x_coco.py)')
    parser.add_argument('--name', default=None, help='file name stem (default: config name)')
    parser.add_argument('--cfg-options', nargs='+', default=[],
                        help='the key=value options it was trained with')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    student = args.student_config
    if student is not None and '::' not in student:
        student = osp.abspath(student)
    keys = plain_student_keys(osp.abspath(args.config), args.cfg_options, student)
    name = args.name or osp.splitext(osp.basename(args.config))[0]
    info = release_checkpoint(args.checkpoint, args.out_dir, name, student_keys=keys)
    print(f'{info["file"]}\nsha256 {info["sha256"]}\n'
          f'dropped {len(info["dropped_keys"])} weights {info["dropped_keys"][:5]} and '
          f'{info["dropped_entries"]}')
    return info


if __name__ == '__main__':
    main()
