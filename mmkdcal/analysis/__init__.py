"""Analysis studies built on mmkdcal (not imported by ``mmkdcal`` itself).

:mod:`~mmkdcal.analysis.teacher_calibration_study`: teacher calibration vs. student accuracy in
knowledge distillation on scikit-learn's digits (CLI: tools/analysis/teacher_calibration_study.py).
"""
from .teacher_calibration_study import (StudyConfig, TrainRecipe, correlation_table,
                                        default_student_recipe, default_teacher_recipes,
                                        plot_study, run_study, summarize, write_markdown)

__all__ = [
    'StudyConfig', 'TrainRecipe', 'correlation_table', 'default_student_recipe',
    'default_teacher_recipes', 'plot_study', 'run_study', 'summarize', 'write_markdown'
]
