"""Hooks registered in MMDetection's HOOKS registry."""
from .atomic_checkpoint_hook import AtomicCheckpointHook
from .distill_stop_hook import DistillStopHook
from .teacher_calibration_hook import TeacherCalibrationHook

__all__ = ['AtomicCheckpointHook', 'DistillStopHook', 'TeacherCalibrationHook']
