"""MMEngine metrics (registered in ``mmdet.registry.METRICS``) built on
:mod:`mmkdcal.calibration`."""
from ..utils.stack import require_openmmlab

require_openmmlab(__name__)
# the imports below need a working stack (checked above)

from .classification_calibration_metric import ClassificationCalibrationMetric  # noqa: E402
from .detection_calibration_metric import DetectionCalibrationMetric  # noqa: E402
from .topk_accuracy import TopKAccuracy  # noqa: E402

__all__ = ['ClassificationCalibrationMetric', 'DetectionCalibrationMetric', 'TopKAccuracy']
