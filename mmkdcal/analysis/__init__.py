"""Analysis studies built on mmkdcal (not imported by ``mmkdcal`` itself)."""
from .teacher_calibration_study import (StudyConfig, TrainRecipe, correlation_table,
                                        run_study, summarize)

__all__ = ['StudyConfig', 'TrainRecipe', 'correlation_table', 'run_study', 'summarize']
