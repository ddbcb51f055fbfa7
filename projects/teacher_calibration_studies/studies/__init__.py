"""Analysis studies built on mmkdcal (not imported by ``mmkdcal`` itself).

- :mod:`~mmkdcal.analysis.teacher_calibration_study`: teacher calibration vs. student accuracy
  in knowledge distillation on scikit-learn's digits (CLI:
  tools/analysis/teacher_calibration_study.py); its pieces are
  :mod:`~mmkdcal.analysis.digits_classifiers` (data, models, training),
  :mod:`~mmkdcal.analysis.teacher_calibration_summary`,
  :mod:`~mmkdcal.analysis.teacher_calibration_plots` and
  :mod:`~mmkdcal.analysis.teacher_calibration_report`.
- :mod:`~mmkdcal.analysis.detection_teacher_study`: teacher calibration vs. KD student mAP on
  DigitsDet (CLI: tools/analysis/detection_teacher_study.py); its pieces are
  :mod:`~mmkdcal.analysis.detection_teacher_measure`, :mod:`~mmkdcal.analysis.study_jobs`,
  :mod:`~mmkdcal.analysis.detection_study_summary`, :mod:`~mmkdcal.analysis.detection_study_plots`,
  :mod:`~mmkdcal.analysis.detection_study_report` and the teacher-training loss
  :mod:`~mmkdcal.analysis.soft_target_focal_loss` (registered only when a config imports it).
  These import MMDetection and are not imported here.
- :mod:`~mmkdcal.analysis.statistics`: correlations, t and bootstrap intervals (both studies).
"""
from .digits_classifiers import TrainRecipe, default_student_recipe, default_teacher_recipes
from .statistics import (bootstrap_correlation_ci, bootstrap_mean_ci, correlation_with_ci,
                         mean_ci, pearson_spearman)
from .teacher_calibration_plots import plot_study
from .teacher_calibration_report import reading, write_markdown
from .teacher_calibration_study import StudyConfig, run_study
from .teacher_calibration_summary import correlation_table, summarize

__all__ = [
    'StudyConfig', 'TrainRecipe', 'bootstrap_correlation_ci', 'bootstrap_mean_ci',
    'correlation_table', 'correlation_with_ci', 'default_student_recipe',
    'default_teacher_recipes', 'mean_ci', 'pearson_spearman', 'plot_study', 'reading',
    'run_study', 'summarize', 'write_markdown'
]
