"""Engine parts: the teacher calibration pass and its hook (registered in HOOKS)."""
from . import hooks  # noqa: F401
from .teacher_calibration import (collect_calibration_data, default_fit_on, fit_and_report,
                                  format_report)

__all__ = ['collect_calibration_data', 'default_fit_on', 'fit_and_report', 'format_report',
           'hooks']
