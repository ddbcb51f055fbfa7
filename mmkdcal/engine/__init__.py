"""Engine parts: the calibration modes, the teacher calibration pass and its hook (in HOOKS)."""
from ..utils.stack import require_openmmlab

require_openmmlab(__name__)

# flake8: noqa: E402
from . import hooks
from .calibration_modes import (CALIBRATION_MODES, CalibrationContext, CalibrationMode,
                                GroundTruthIndex, calibration_mode_names, default_fit_on,
                                get_calibration_mode, register_calibration_mode)
from .hooks.teacher_calibration_hook import (fingerprint_as_teacher, load_calibrator_file,
                                             save_calibrator_file)
from .teacher_calibration import (TARGETS, calibration_report, calibrator_names,
                                  collect_calibration_data, fit_and_report, format_report, jsonable,
                                  log_calibration_to_visualizer, under_confidence_warning)

__all__ = ['TARGETS', 'calibrator_names', 'jsonable', 'CALIBRATION_MODES', 'CalibrationContext',
           'CalibrationMode', 'GroundTruthIndex', 'calibration_mode_names', 'calibration_report',
           'collect_calibration_data', 'default_fit_on', 'fit_and_report', 'format_report',
           'get_calibration_mode', 'hooks', 'log_calibration_to_visualizer',
           'register_calibration_mode', 'under_confidence_warning', 'fingerprint_as_teacher',
           'load_calibrator_file', 'save_calibrator_file']
