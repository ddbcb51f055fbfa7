"""Compare mmkdcal's LaECE/LaACE with the authors' evaluation code on random detection sets.

The reference is ``fiveai/detection_calibration`` (Kuzucu et al., ECCV 2024): its
``CalibrationCOCO`` runs its own COCOeval fork (``pycocotools_lrp``), whose ``mask`` module
loads the standard ``pycocotools._mask``, so the fork runs on any Python with pycocotools.
Clone that repository, then::

    python tools/analysis/check_laece_reference.py --reference PATH/detection_calibration/src

For each seed it writes a COCO ground-truth file and a detection list, evaluates both, and
prints the two values and their difference; it exits 1 when a difference exceeds ``--tol``.
``tests/calibration/test_localisation.py`` builds the same sets (``random_set``) and holds the
reference values this prints.
"""
import argparse
import json
import os.path as osp
import sys
import tempfile
from typing import Dict, List, Tuple

import numpy as np

from mmkdcal.calibration import localisation_errors


def random_set(seed: int, n_images: int = 40, n_classes: int = 5) -> Tuple[Dict, List[Dict]]:
    """A COCO ground-truth dict and detection list, with near and far detections of each box."""
    rng = np.random.default_rng(seed)
    images, anns, dets = [], [], []
    for img_id in range(1, n_images + 1):
        w, h = 320.0, 240.0
        images.append(dict(id=img_id, width=w, height=h, file_name=f'{img_id}.jpg'))
        for _ in range(rng.integers(0, 6)):
            bw, bh = rng.uniform(10, 120, 2)
            x, y = rng.uniform(0, w - bw), rng.uniform(0, h - bh)
            c = int(rng.integers(1, n_classes + 1))
            anns.append(dict(id=len(anns) + 1, image_id=img_id, category_id=c, iscrowd=0,
                             bbox=[x, y, bw, bh], area=bw * bh))
            for _ in range(rng.integers(0, 4)):  # detections around the box, some of its class
                jit = rng.normal(0, 0.25, 4) * [bw, bh, bw, bh]
                dets.append(dict(image_id=img_id, score=float(rng.uniform(0.01, 1.0)),
                                 category_id=c if rng.uniform() < 0.8 else
                                 int(rng.integers(1, n_classes + 1)),
                                 bbox=[x + jit[0], y + jit[1], max(2.0, bw + jit[2]),
                                       max(2.0, bh + jit[3])]))
        for _ in range(rng.integers(0, 3)):  # background detections
            bw, bh = rng.uniform(5, 60, 2)
            dets.append(dict(image_id=img_id, score=float(rng.uniform(0.01, 1.0)),
                             category_id=int(rng.integers(1, n_classes + 1)),
                             bbox=[float(rng.uniform(0, w - bw)), float(rng.uniform(0, h - bh)),
                                   bw, bh]))
    cats = [dict(id=c, name=str(c)) for c in range(1, n_classes + 1)]
    return dict(images=images, annotations=anns, categories=cats), dets


def ours(gt: Dict, dets: List[Dict], tau: float) -> Dict[str, float]:
    """mmkdcal's LaECE/LaACE of one set (COCO xywh boxes turned into x1y1x2y2 arrays)."""
    def xyxy(b):
        return [b[0], b[1], b[0] + b[2], b[1] + b[3]]
    images = []
    for img in gt['images']:
        g = [a for a in gt['annotations'] if a['image_id'] == img['id']]
        d = [a for a in dets if a['image_id'] == img['id']]
        images.append(dict(
            det_boxes=np.array([xyxy(a['bbox']) for a in d]).reshape(-1, 4),
            det_scores=np.array([a['score'] for a in d]),
            det_labels=np.array([a['category_id'] for a in d], dtype=np.int64),
            gt_boxes=np.array([xyxy(a['bbox']) for a in g]).reshape(-1, 4),
            gt_labels=np.array([a['category_id'] for a in g], dtype=np.int64)))
    return localisation_errors(images, iou_thr=tau)


def reference(gt: Dict, dets: List[Dict], tau: float, src: str) -> Dict[str, float]:
    """The authors' LaECE_0 (25 bins) and LaACE_0, as their ``evaluate_calibration`` runs them."""
    # its LVIS sub-package imports itself as the top-level ``lvis``
    sys.path[:0] = [src, osp.join(src, 'detection_calibration')]
    from detection_calibration.coco_calibration import CalibrationCOCO
    from detection_calibration.pycocotools_lrp.coco import COCO
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = osp.join(tmp, 'gt.json')
        with open(path, 'w') as f:
            json.dump(gt, f)
        for key, is_ace in (('laece', False), ('laace', True)):
            ev = CalibrationCOCO(path, path, 'bbox', 25, tau, False, is_ace, 100)
            ev.cocoDt = COCO(path).loadRes([dict(d) for d in dets])
            ev.evaluate()
            ev.prepare_input()
            ev.compute_single_errors()
            out[key] = float(ev.accumulate_errors())
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--reference', required=True,
                        help="the 'src' folder of a detection_calibration checkout")
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--tau', type=float, default=0.0)
    parser.add_argument('--tol', type=float, default=1e-6)
    args = parser.parse_args()
    worst = 0.0
    for seed in args.seeds:
        gt, dets = random_set(seed)
        a, b = ours(gt, dets, args.tau), reference(gt, dets, args.tau, args.reference)
        for key in ('laece', 'laace'):
            worst = max(worst, abs(a[key] - b[key]))
            print(f'seed {seed} tau {args.tau} {key}: mmkdcal {a[key]:.12f} reference '
                  f'{b[key]:.12f} diff {a[key] - b[key]:+.2e}')
    print(f'largest difference {worst:.2e} (tolerance {args.tol:.0e})')
    return int(worst > args.tol)


if __name__ == '__main__':
    sys.exit(main())
