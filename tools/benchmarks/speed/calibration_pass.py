"""Throughput of the teacher-calibration pass against the teacher's plain inference."""
from typing import List, Optional

import torch

from .timing import summarize, time_interleaved

__all__ = ['SyntheticCalibrationLoader', 'bench_calibration_pass']


class _Annotations:
    """A dataset view of the batches' own ground truth (``get_data_info`` by sample index)."""

    def __init__(self, infos: List[dict]) -> None:
        self.infos = infos

    def __len__(self) -> int:
        return len(self.infos)

    def get_data_info(self, index: int) -> dict:
        return self.infos[index]


class SyntheticCalibrationLoader:
    """Raw batches as the calibration pass reads a dataloader: iterable, sized, and with a
    ``dataset`` whose annotations are the batches' own ground truth (each sample gets a unique
    ``sample_idx``, so no image is mistaken for a repeat of another)."""

    def __init__(self, batches: List[dict]) -> None:
        self.batches = batches
        infos = []
        for batch in batches:
            for sample in batch['data_samples']:
                sample.set_metainfo(dict(sample_idx=len(infos)))
                gt = sample.gt_instances
                infos.append(dict(instances=[
                    dict(bbox=box.tolist(), bbox_label=int(lab), ignore_flag=0)
                    for box, lab in zip(gt.bboxes, gt.labels)]))
        self.dataset = _Annotations(infos)

    def __iter__(self):
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


def bench_calibration_pass(teacher: torch.nn.Module, batches: List[dict], warmup: int,
                           repeats: int, device: Optional[torch.device] = None) -> dict:
    """``collect_calibration_data(teacher, batches, 'detections')`` vs plain ``teacher.predict``.

    Both run over the same raw batches (preprocessing included on both sides). The teacher's
    ``score_thr`` is set to 0 for both, so that a randomly initialised teacher still returns
    ``max_per_img`` detections per image to match (as a trained one does).

    Args:
        teacher: A detector (single- or two-stage).
        batches: Raw batches (``synthetic_batch``), the calibration "dataloader".
        warmup: Untimed passes first (at most 1 is used).
        repeats: Timed passes over all batches, interleaved.
        device: The teacher's device.

    Returns:
        Times (median and spread, ms per pass), images/s of each, their ratio
        (``collect_over_predict_throughput``; target >= 0.9) and the detection counts (the pass
        keeps exactly the detections ``predict`` returns).
    """
    from mmkdcal.engine.teacher_calibration import collect_calibration_data
    device = device or torch.device('cpu')
    head = teacher.roi_head if hasattr(teacher, 'roi_head') else teacher.bbox_head
    head.test_cfg['score_thr'] = 0.0
    collected = {}
    counted = []

    loader = SyntheticCalibrationLoader(batches)

    def calib():
        collected.update(collect_calibration_data(teacher, loader, 'detections',
                                                  score_thr=0.0, progress=False))

    def plain():
        was_training = teacher.training
        teacher.eval()
        n = 0
        with torch.no_grad():
            for batch in batches:
                d = teacher.data_preprocessor(batch, False)
                for r in teacher.predict(d['inputs'], d['data_samples'], rescale=False):
                    n += len(r.pred_instances)
        teacher.train(was_training)
        counted.append(n)

    times = time_interleaved(dict(collect=calib, predict=plain), min(warmup, 1), repeats, device)
    n_img = sum(len(b['inputs']) for b in batches)
    c = dict(images=n_img, collect_ms=summarize(times['collect']),
             predict_ms=summarize(times['predict']), samples_ms=times,
             detections_collected=int(len(collected['logits'])),
             detections_predicted=int(counted[-1]))
    c['collect_images_per_s'] = n_img / (c['collect_ms']['median'] / 1e3)
    c['predict_images_per_s'] = n_img / (c['predict_ms']['median'] / 1e3)
    c['collect_over_predict_throughput'] = c['collect_images_per_s'] / c['predict_images_per_s']
    c['target'] = 0.9
    return c
