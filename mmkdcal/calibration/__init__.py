"""Calibration metrics, calibrators and reliability diagrams (torch + numpy only).

Nothing here imports MMDetection/MMEngine/MMCV, so other frameworks can reuse it.
"""
from .calibrators import CALIBRATORS, Calibrator, apply_calibrator, fit_calibrator
from .detection import (box_iou, detection_ece, detection_ece_over_under, ground_truth_arrays,
                        match_detections, match_detections_batch, match_image_detections,
                        relative_box_features)
from .localisation import laace, laece, localisation_errors
from .metrics import (ace, ace_over_under, binary_ece, brier, classwise_ece, ece, ece_over_under,
                      mce, nll)
from .reliability import reliability_diagram, reliability_diagram_before_after, reliability_stats
from .temperature import OBJECTIVES, fit_temperature, prepare_targets
from .temperature_scaler import TemperatureScaler

__all__ = [
    'CALIBRATORS', 'Calibrator', 'apply_calibrator', 'fit_calibrator', 'OBJECTIVES',
    'fit_temperature', 'prepare_targets', 'TemperatureScaler',
    'ece', 'mce', 'ece_over_under', 'ace', 'ace_over_under', 'classwise_ece', 'binary_ece', 'nll',
    'brier', 'box_iou', 'ground_truth_arrays', 'match_detections', 'match_detections_batch',
    'match_image_detections', 'relative_box_features', 'detection_ece', 'detection_ece_over_under',
    'laece', 'laace', 'localisation_errors', 'reliability_stats', 'reliability_diagram',
    'reliability_diagram_before_after'
]
