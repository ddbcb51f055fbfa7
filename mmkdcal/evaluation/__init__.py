"""MMEngine metrics (registered in ``mmdet.registry.METRICS``) built on :mod:`mmkdcal.calibration`."""
from .. import require_openmmlab

require_openmmlab(__name__)

from .classification_calibration_metric import ClassificationCalibrationMetric
from .detection_calibration_metric import DetectionCalibrationMetric
from .topk_accuracy import TopKAccuracy

__all__ = ['ClassificationCalibrationMetric', 'DetectionCalibrationMetric', 'TopKAccuracy']
