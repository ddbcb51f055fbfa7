"""Send a teacher calibration report to the runner's visualizer (TensorBoard, local files...).

:class:`~mmkdcal.engine.hooks.TeacherCalibrationHook` calls :func:`log_calibration_to_visualizer`
after its calibration pass. With ``vis_backends=[dict(type='TensorboardVisBackend')]`` the values
appear in TensorBoard under ``teacher_calibration/``; with the ``LocalVisBackend`` they are
appended to ``<work_dir>/<timestamp>/vis_data/scalars.json`` and the image is written to
``vis_data/vis_image/teacher_calibration_<step>.png``.
"""
import os.path as osp
from typing import Any, Dict, Optional

import numpy as np
from mmengine.dist import is_main_process

__all__ = ['IMAGE_NAME', 'SCALAR_PREFIX', 'calibration_scalars', 'log_calibration_to_visualizer']

#: Tag prefix of the scalars.
SCALAR_PREFIX = 'teacher_calibration'
#: Name of the reliability-diagram image (no '/': the local backend makes it a file name).
IMAGE_NAME = 'teacher_calibration'


def calibration_scalars(report: Dict[str, Any]) -> Dict[str, float]:
    """The scalars of a :func:`~mmkdcal.engine.fit_and_report` report.

    Args:
        report: ``dict(temperature=float or list, before={...}, after={...}, ...)``.

    Returns:
        ``teacher_calibration/<metric>_before`` and ``..._after`` for every metric of the report
        (``dece``, ``dece_box``, ``nll`` for detections; ``ece``, ``ace``, ``nll`` for
        logits...; not the detection count), and ``teacher_calibration/temperature`` (for one
        temperature per class: ``temperature_mean``, ``temperature_min`` and
        ``temperature_max``).
    """
    scalars: Dict[str, float] = {}
    for stage in ('before', 'after'):
        for key, value in report[stage].items():
            if key.startswith('num_') or value is None:
                continue
            scalars[f'{SCALAR_PREFIX}/{key}_{stage}'] = float(value)
    t = np.asarray(report['temperature'], dtype=np.float64)
    if t.ndim == 0:
        scalars[f'{SCALAR_PREFIX}/temperature'] = float(t)
    else:
        scalars.update({f'{SCALAR_PREFIX}/temperature_mean': float(t.mean()),
                        f'{SCALAR_PREFIX}/temperature_min': float(t.min()),
                        f'{SCALAR_PREFIX}/temperature_max': float(t.max())})
    return scalars


def _read_rgb(path: str) -> np.ndarray:
    """A PNG as an RGB uint8 array (H, W, 3) (alpha composited onto white)."""
    from PIL import Image
    with Image.open(path) as img:
        img = img.convert('RGBA')
        background = Image.new('RGBA', img.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(background, img).convert('RGB'))


def log_calibration_to_visualizer(runner: Any, report: Dict[str, Any],
                                  png_path: Optional[str] = None) -> Dict[str, float]:
    """Send the calibration scalars and the reliability diagram to ``runner.visualizer``.

    Only the main process writes (the visualizer's backends are main-process only too). The
    step is ``runner.iter``: 0 for a fresh run, the resumed iteration otherwise.

    Args:
        runner: The MMEngine runner.
        report: The report returned by :func:`~mmkdcal.engine.fit_and_report`.
        png_path: The reliability diagram written with it; None or a missing file: scalars only.

    Returns:
        The scalars that were sent.
    """
    scalars = calibration_scalars(report)
    visualizer = getattr(runner, 'visualizer', None)
    if visualizer is None or not is_main_process():
        return scalars
    step = int(getattr(runner, 'iter', 0))
    visualizer.add_scalars(scalars, step=step)
    if png_path is not None and osp.isfile(png_path):
        visualizer.add_image(IMAGE_NAME, _read_rgb(png_path), step=step)
    elif png_path is not None:
        runner.logger.warning(f'Teacher calibration: no reliability diagram at {png_path}; '
                              'only the scalars were sent to the visualizer.')
    return scalars
