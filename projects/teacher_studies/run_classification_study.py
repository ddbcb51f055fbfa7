"""Teacher calibration vs. student accuracy in KD, on scikit-learn's digits.

Trains a family of teachers of varied calibration, fits each one's calibration temperature on
held-out data, distils the same student from the raw and from the calibrated teacher, and
reports correlations and gains (Kim et al., "The Role of Teacher Calibration in Knowledge
Distillation", IEEE Access 2025). See docs/teacher_calibration_study.md.

Usage:
    python projects/teacher_studies/run_classification_study.py [--seeds N] [--out DIR] [--quick]
"""
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from projects.teacher_studies.studies.teacher_calibration_study import main  # noqa: E402

if __name__ == '__main__':
    main()
