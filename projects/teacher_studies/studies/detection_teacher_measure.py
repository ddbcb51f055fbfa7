"""Measure one trained detector as a teacher: D-ECE and its direction, its temperatures and
its calibrators.

One pass of the detector over each split collects its detections matched to ground truth
(:func:`mmkdcal.engine.collect_calibration_data`, ``fit_on='detections'``, as
``tools/calibrate.py`` and ``TeacherCalibrationHook`` do); on the first split a temperature is
fitted for each objective (:func:`mmkdcal.engine.fit_and_report`: NLL, ACE, ECE), and on every
split the D-ECE, its over- and under-confident parts and the binary NLL are reported before and
after each temperature. On the first split, each calibrator (temperature, per-class
temperature, Platt, isotonic and ``auto``) is also fitted by the same ``fit_and_report``, whose
report gives D-ECE and LaECE before and after on all of that split and, fitted on one half of
its images, on that half and on the held-out other half; every other split is reported after
the calibrator fitted on the first (:func:`mmkdcal.engine.calibration_report`). Each fitted
state is saved (:func:`mmkdcal.engine.save_calibrator_file`, with the teacher's fingerprint),
so that a KD run uses exactly it (``TeacherCalibrationHook(calibrator_file=...)``). The
detections are saved, so every number can be recomputed.

    python -m projects.teacher_studies.studies.detection_teacher_measure CONFIG CKPT --out DIR \\
        [--splits calib val] [--map-splits calib] [--objectives nll ace ece] \\
        [--calibrators temperature class_temperature platt isotonic auto] [--target tp] \\
        [--cfg-options ...]

Writes ``DIR/measure.json``, ``DIR/detections.npz`` (``<split>_logits``, ``<split>_matched``),
per objective ``DIR/calibration_<objective>.json`` / ``.png`` (reliability diagrams) and per
calibrator ``DIR/calibrator_<name>.json`` / ``.png`` (its report) and ``.pth`` (its state).
"""
import argparse
import json
import os
import os.path as osp
from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np

from mmkdcal.calibration import OBJECTIVES, detection_ece_over_under

__all__ = ['OBJECTIVES', 'CALIBRATORS', 'MEASURE_VERSION', 'coco_map', 'dece_over_under',
           'detection_summary', 'measure_teacher', 'main']

#: The calibrators fitted on the first split (``mmkdcal.engine.calibrator_names()``).
CALIBRATORS = ('temperature', 'class_temperature', 'platt', 'isotonic', 'auto')
#: Version of ``measure.json``'s content: a finished measurement of another version is redone.
MEASURE_VERSION = 3


def dece_over_under(scores: Any, matched: Any, n_bins: int = 10) -> Tuple[float, float, float]:
    """Confidence-only D-ECE with its over- and under-confident parts
    (:func:`mmkdcal.calibration.detection_ece_over_under`): ``(dece, over, under)``, NaNs for an
    empty input."""
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    if s.size == 0:
        return float('nan'), float('nan'), float('nan')
    over, under = detection_ece_over_under(s, np.asarray(matched).reshape(-1), n_bins=n_bins)
    return over + under, over, under


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # overflow-free logistic


def detection_summary(logits: np.ndarray, matched: np.ndarray, temperature: float,
                      n_bins: int = 10, score_thr: Optional[float] = None) -> Dict[str, float]:
    """D-ECE, its parts and the binary NLL of detections whose logits are divided by ``T``.

    Args:
        logits: Detection logits ``log(s / (1 - s))`` (N,).
        matched: 0/1 match flags (N,).
        temperature: The temperature ``T`` (scores become ``sigmoid(logit / T)``).
        n_bins: Confidence bins.
        score_thr: Keep only the detections whose *scaled* score is at least this (as
            ``DetectionCalibrationMetric`` does on a model's output); None keeps all.

    Returns:
        dict: ``dece``, ``dece_over``, ``dece_under``, ``nll``, ``mean_score``,
        ``precision`` and ``num_dets``.
    """
    z = np.asarray(logits, dtype=np.float64).reshape(-1) / float(temperature)
    hit = np.asarray(matched, dtype=np.float64).reshape(-1)
    p = _sigmoid(z)
    if score_thr is not None:
        keep = p >= score_thr
        z, p, hit = z[keep], p[keep], hit[keep]
    d, o, u = dece_over_under(p, hit, n_bins)
    # binary cross-entropy from logits: softplus(z) - y z, written stably
    nll = (float(np.mean(np.logaddexp(0.0, z) - hit * z)) if z.size else float('nan'))
    return dict(dece=d, dece_over=o, dece_under=u, nll=nll,
                mean_score=float(p.mean()) if p.size else float('nan'),
                precision=float(hit.mean()) if hit.size else float('nan'),
                num_dets=int(z.size))


def coco_map(model: Any, loader_cfg: Dict[str, Any]) -> Dict[str, float]:
    """COCO bbox mAP of ``model`` on one dataloader (what ``tools/test.py`` reports).

    Args:
        model: A built detector with its weights loaded.
        loader_cfg: The dataloader config (its dataset's ``data_root`` + ``ann_file`` is the
            ground truth).

    Returns:
        dict: ``map`` (mAP@[.5:.95]) and ``map50``.
    """
    import torch
    from mmengine.evaluator import Evaluator
    from mmengine.runner import Runner

    loader = Runner.build_dataloader(loader_cfg, seed=0)
    ds = loader_cfg['dataset']
    evaluator = Evaluator([dict(type='CocoMetric', metric='bbox', format_only=False,
                                ann_file=osp.join(ds.get('data_root', ''), ds['ann_file']))])
    evaluator.dataset_meta = loader.dataset.metainfo
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for batch in loader:
                evaluator.process(data_samples=model.test_step(batch), data_batch=batch)
    finally:
        model.train(was_training)
    m = evaluator.evaluate(len(loader.dataset))
    return dict(map=float(m['coco/bbox_mAP']), map50=float(m['coco/bbox_mAP_50']))


def measure_teacher(config: str,
                    checkpoint: str,
                    out_dir: str,
                    splits: Sequence[str] = ('calib', 'val'),
                    objectives: Sequence[str] = OBJECTIVES,
                    map_splits: Sequence[str] = ('calib', ),
                    cfg_options: Optional[Dict[str, Any]] = None,
                    score_thr: float = 0.05,
                    iou_thr: float = 0.5,
                    n_bins: int = 10,
                    report_score_thr: float = 0.3,
                    calibrators: Sequence[str] = CALIBRATORS,
                    target: str = 'tp') -> Dict[str, Any]:
    """Collect detections on ``splits``; on the first split fit one temperature per objective
    and each calibrator.

    Args:
        config: The detector's config file (a plain detector, not a distiller).
        checkpoint: Its checkpoint.
        out_dir: Output folder.
        splits: Names of ``<name>_dataloader`` entries of the config; the first is fitted on.
        objectives: Temperature objectives (subset of :data:`OBJECTIVES`).
        map_splits: Also report the COCO mAP on these splits (:func:`coco_map`).
        cfg_options: Overrides merged into the config (as ``--cfg-options``).
        score_thr: Detections below this raw score are not collected.
        iou_thr: IoU at which a detection matches a ground-truth box.
        n_bins: Confidence bins of every D-ECE.
        report_score_thr: Also report every split with the detections whose scaled score is
            at least this (the ``DetectionCalibrationMetric`` view).
        calibrators: Calibrators fitted on the first split (subset of :data:`CALIBRATORS`).
        target: Their fit target, ``'tp'`` or ``'iou'`` (``fit_and_report``).

    Returns:
        dict: ``version``, ``temperatures`` (objective -> T), ``map`` (split -> mAP), per split
        ``splits[name]`` with ``before`` / ``before_thr`` and, per objective,
        ``after[objective]`` / ``after_thr[objective]`` (see :func:`detection_summary`),
        ``calibrators[name]`` (:func:`_fit_calibrators`), and the settings.
    """
    from mmengine.config import Config
    from mmengine.registry import DefaultScope
    from mmengine.runner import Runner, load_checkpoint

    from mmdet.registry import MODELS

    import mmkdcal  # noqa: F401  (registers modules, safe checkpoint loading)
    from mmkdcal.engine import collect_calibration_data, fingerprint_as_teacher, fit_and_report

    bad = [o for o in objectives if o not in OBJECTIVES]
    if bad or not objectives:
        raise ValueError(f'objectives must be a non-empty subset of {OBJECTIVES}, got '
                         f'{list(objectives)}.')
    if [c for c in calibrators if c not in CALIBRATORS] or target not in ('tp', 'iou'):
        raise ValueError(f'calibrators must be a subset of {CALIBRATORS} and target tp or iou, '
                         f'got {list(calibrators)} and {target!r}.')
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    missing = [s for s in list(splits) + list(map_splits) if f'{s}_dataloader' not in cfg]
    if missing or not splits:
        choices = sorted(k[:-len('_dataloader')] for k in cfg.keys() if k.endswith('_dataloader'))
        raise ValueError(f'splits {missing or list(splits)}: the config has no such '
                         f'<split>_dataloader; choose from {choices}.')
    if hasattr(MODELS.get(cfg.model.type), 'set_teacher_temperature'):
        raise ValueError(f'{config} is a distillation config; measure the teacher with its own '
                         'config and checkpoint.')
    DefaultScope.get_instance(f'measure-{os.getpid()}', scope_name=cfg.get('default_scope',
                                                                           'mmdet'))
    model = MODELS.build(cfg.model)
    load_checkpoint(model, checkpoint, map_location='cpu', strict=True)
    os.makedirs(out_dir, exist_ok=True)
    data, arrays = {}, {}
    for split in splits:
        loader = Runner.build_dataloader(cfg[f'{split}_dataloader'], seed=0)
        data[split] = collect_calibration_data(model, loader, 'detections', score_thr=score_thr,
                                               iou_thr=iou_thr, progress=False)
        arrays[f'{split}_logits'] = data[split]['logits'].double().numpy()
        arrays[f'{split}_matched'] = data[split]['matched'].numpy().astype(np.uint8)
    np.savez_compressed(osp.join(out_dir, 'detections.npz'), **arrays)
    fit_split = splits[0]
    temperatures = {}
    for objective in objectives:
        report = fit_and_report(data[fit_split], 'detections', objective=objective,
                                n_bins=n_bins, out_dir=out_dir,
                                prefix=f'calibration_{objective}')
        temperatures[objective] = float(report['temperature'])
    fitted = _fit_calibrators(data, fit_split, calibrators, target, n_bins, out_dir,
                              checkpoint, fingerprint_as_teacher(model))
    result: Dict[str, Any] = dict(
        version=MEASURE_VERSION, config=config, checkpoint=checkpoint, fit_split=fit_split,
        score_thr=score_thr, iou_thr=iou_thr, n_bins=n_bins, report_score_thr=report_score_thr,
        temperatures=temperatures, target=target, calibrators=fitted, splits={},
        map={s: coco_map(model, cfg[f'{s}_dataloader']) for s in map_splits})
    for split in splits:
        z, m = arrays[f'{split}_logits'], arrays[f'{split}_matched']
        result['splits'][split] = dict(
            before=detection_summary(z, m, 1.0, n_bins),
            before_thr=detection_summary(z, m, 1.0, n_bins, report_score_thr),
            after={o: detection_summary(z, m, t, n_bins) for o, t in temperatures.items()},
            after_thr={o: detection_summary(z, m, t, n_bins, report_score_thr)
                       for o, t in temperatures.items()})
    with open(osp.join(out_dir, 'measure.json'), 'w') as f:
        json.dump(result, f, indent=1)
    return result


def _same_state(a: Dict[str, Any], b: Dict[str, Any]) -> bool:
    """Whether two calibrator states are identical (names, lists and tensors, bit for bit)."""
    import torch

    if set(a) != set(b):
        return False
    for k, v in a.items():
        w = b[k]
        if isinstance(v, torch.Tensor) or isinstance(w, torch.Tensor):
            if not (isinstance(v, torch.Tensor) and isinstance(w, torch.Tensor)
                    and v.dtype == w.dtype and torch.equal(v, w)):
                return False
        elif v != w:
            return False
    return True


def _fit_calibrators(data: Dict[str, Any], fit_split: str, calibrators: Sequence[str],
                     target: str, n_bins: int, out_dir: str, checkpoint: Optional[str] = None,
                     fingerprint: Optional[str] = None) -> Dict[str, Any]:
    """Fit each calibrator on ``data[fit_split]`` and report it on every split; save each state
    as a calibrator file of the teacher ``checkpoint`` (``fingerprint``).

    Returns:
        dict: name -> ``chosen`` (the calibrator; for ``auto`` the one it chose),
        ``describe``, ``temperature`` (temperature calibrators), ``state_file`` / ``sha256``
        (the saved state), ``same_state_as`` (``auto`` only: the calibrator whose fitted state
        is bit-identical to auto's, or None), ``before`` / ``after`` (on all of the fitting
        split: ``dece``, ``dece_over``, ``dece_under``, ``laece``, ``nll`` ...), ``splits``
        (``fit_and_report``'s half-split rows: ``fit_before``, ``fit_after``,
        ``heldout_before``, ``heldout_after`` per candidate) and ``other[split]`` with
        ``before`` / ``after`` on every other split.
    """
    from mmkdcal.engine import calibration_report, fit_and_report, save_calibrator_file
    from mmkdcal.engine.teacher_calibration import describe_calibrator, jsonable

    out, states = {}, {}
    for name in calibrators:
        report = fit_and_report(data[fit_split], 'detections', objective='nll', n_bins=n_bins,
                                out_dir=out_dir, prefix=f'calibrator_{name}', calibrator=name,
                                target=target, seed=0)
        state = states[name] = report['state']
        same = None
        if name == 'auto':
            same = next((c for c, s in states.items()
                         if c != 'auto' and _same_state(s, state)), None)
        path = osp.join(out_dir, f'calibrator_{name}.pth')
        sha = save_calibrator_file(path, state, checkpoint, fingerprint)
        rec = dict(chosen=report['calibrator'], describe=describe_calibrator(report),
                   state_file=path, sha256=sha, same_state_as=same,
                   before=report['before'], after=report['after'],
                   splits=jsonable(report['splits']), other={})
        if 'temperature' in report:
            rec['temperature'] = report['temperature']
        for split, d in data.items():
            if split != fit_split:
                rec['other'][split] = dict(
                    before=calibration_report(d, 'detections', 1.0, n_bins),
                    after=calibration_report(d, 'detections', state, n_bins))
        out[name] = rec
    return out


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    """Command line of :func:`measure_teacher`."""
    from mmengine.config import DictAction

    parser = argparse.ArgumentParser(description='Measure a detector as a KD teacher: D-ECE '
                                     'over/under and temperatures per objective.')
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--out', required=True, help='output folder')
    parser.add_argument('--splits', nargs='+', default=['calib', 'val'],
                        help='dataloaders to run on; the first one is fitted on')
    parser.add_argument('--objectives', nargs='+', choices=OBJECTIVES, default=list(OBJECTIVES))
    parser.add_argument('--map-splits', nargs='*', default=['calib'],
                        help='also report the COCO mAP on these dataloaders')
    parser.add_argument('--score-thr', type=float, default=0.05)
    parser.add_argument('--iou-thr', type=float, default=0.5)
    parser.add_argument('--n-bins', type=int, default=10)
    parser.add_argument('--report-score-thr', type=float, default=0.3)
    parser.add_argument('--calibrators', nargs='*', choices=CALIBRATORS,
                        default=list(CALIBRATORS), help='fitted on the first split')
    parser.add_argument('--target', choices=('tp', 'iou'), default='tp',
                        help="the calibrators' fit target")
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = parser.parse_args(argv)
    result = measure_teacher(args.config, args.checkpoint, args.out, args.splits,
                             args.objectives, args.map_splits, args.cfg_options, args.score_thr,
                             args.iou_thr, args.n_bins, args.report_score_thr,
                             args.calibrators, args.target)
    fit = result['splits'][result['fit_split']]
    print('temperatures: ' + ', '.join(f'{o} {t:.4f}' for o, t in result['temperatures'].items())
          + f"; {result['fit_split']} D-ECE {fit['before']['dece']:.4f} (over "
          f"{fit['before']['dece_over']:.4f}, under {fit['before']['dece_under']:.4f})")
    return result


if __name__ == '__main__':
    main()
