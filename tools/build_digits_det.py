"""Build the DigitsDet detection data set (seconds, no download).

DigitsDet pastes scikit-learn's 1797 real 8x8 handwritten digit scans, upscaled, onto
cluttered 128x128 canvases; see :mod:`mmkdcal.datasets.digits_det`. The configs under
``configs/demo`` build it on first use, so this tool is only needed to rebuild it
(``--force``) or to build it with other sizes.

Examples:
    python tools/build_digits_det.py                              # data/digits_det, defaults
    python tools/build_digits_det.py --root data/digits_det --force
    python tools/build_digits_det.py --root /tmp/dd --n-train 200 --n-calib 50 --n-val 50
    python tools/build_digits_det.py --root data/digits_det_masks --with-masks
"""
import argparse
import json
import os.path as osp
import sys
import time

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmkdcal.datasets.digits_det import build_digits_det  # noqa: E402


class _PrintLogger:

    def info(self, msg: str) -> None:
        print(msg, flush=True)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Build the DigitsDet data set')
    parser.add_argument('--root', default='data/digits_det', help='output folder')
    parser.add_argument('--n-train', type=int, default=3000, help='training images')
    parser.add_argument('--n-calib', type=int, default=500, help='calibration images')
    parser.add_argument('--n-val', type=int, default=500, help='validation/test images')
    parser.add_argument('--canvas', type=int, default=128, help='image side in pixels')
    parser.add_argument('--seed', type=int, default=0, help='seed of every random draw')
    parser.add_argument('--min-digits', type=int, default=1, help='fewest digits per image')
    parser.add_argument('--max-digits', type=int, default=6, help='most digits per image')
    parser.add_argument('--with-masks', action='store_true',
                        help='also write instance masks (COCO RLE of each digit\'s ink)')
    parser.add_argument(
        '--force', action='store_true',
        help='replace a different or partial DigitsDet build found in --root')
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    start = time.perf_counter()
    paths = build_digits_det(
        root=args.root, n_train=args.n_train, n_calib=args.n_calib, n_val=args.n_val,
        canvas=args.canvas, seed=args.seed, min_digits=args.min_digits,
        max_digits=args.max_digits, with_masks=args.with_masks, force=args.force,
        logger=_PrintLogger())
    with open(paths['meta']) as f:
        meta = json.load(f)
    print(f'DigitsDet ready in {paths["root"]} ({time.perf_counter() - start:.1f} s): '
          f'{meta["counts"]}, sha256 {meta["content_sha256"][:16]}')


if __name__ == '__main__':
    main()
