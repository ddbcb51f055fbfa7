"""MMEngine metrics (registered in ``mmdet.registry.METRICS``) built on :mod:`mmkdcal.calibration`."""
from .classification_calibration_metric import ClassificationCalibrationMetric
from .detection_calibration_metric import DetectionCalibrationMetric
from .topk_accuracy import TopKAccuracy

__all__ = ['ClassificationCalibrationMetric', 'DetectionCalibrationMetric', 'TopKAccuracy']
