"""Hooks registered in MMDetection's HOOKS registry."""
from .teacher_calibration_hook import TeacherCalibrationHook

__all__ = ['TeacherCalibrationHook']
