"""The two teacher-calibration studies of this project, built on mmkdcal's public API.

- :mod:`~.teacher_calibration_study`: teacher calibration vs. student accuracy in knowledge
  distillation on scikit-learn's digits (CLI: ``run_classification_study.py``); its pieces are
  :mod:`~.digits_classifiers` (data, models, training), :mod:`~.teacher_calibration_summary`,
  :mod:`~.teacher_calibration_plots` and :mod:`~.teacher_calibration_report`.
- :mod:`~.detection_teacher_study`: teacher calibration vs. KD student mAP on DigitsDet (CLI:
  ``run_detection_study.py``); its pieces are :mod:`~.detection_teacher_measure`,
  :mod:`~.detection_study_summary`, :mod:`~.detection_study_plots`,
  :mod:`~.detection_study_report` and the teacher-training loss
  :mod:`~.soft_target_focal_loss` (registered only when a config imports it). Its trainings
  run through the tools' job runner (``tools/harness/jobs.py``). These import MMDetection and
  are not imported here.
- :mod:`~.statistics`: correlations, t and bootstrap intervals (both studies).
"""
from .digits_classifiers import TrainRecipe, default_student_recipe, default_teacher_recipes
from .statistics import (bootstrap_correlation_ci, bootstrap_mean_ci, correlation_with_ci, mean_ci,
                         pearson_spearman)
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
