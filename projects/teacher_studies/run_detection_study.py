"""Detection teacher-calibration study on DigitsDet: does a teacher's calibration predict its KD
student's mAP, and when does KD from the calibrated teacher beat KD from the raw one?

Trains thirteen DigitsDet teachers of varied calibration (GFL and RetinaNet; width, depth, schedule,
classification loss), measures each on the calib split (mAP, D-ECE over/under, T for NLL / ACE
/ ECE), distils students from the raw and the calibrated teacher over three seeds, and writes
``<work-dir>/results.json``, ``detection_teacher_study.md`` and two figures. Finished runs are
reused, so an interrupted run resumes. See docs/detection_teacher_study.md.

Usage:
    python projects/teacher_studies/run_detection_study.py [--workers 2] [--work-dir DIR]
    python projects/teacher_studies/run_detection_study.py --quick      # test-sized
    python projects/teacher_studies/run_detection_study.py --replot --publish
"""
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from projects.teacher_studies.studies.detection_teacher_study import main  # noqa: E402

if __name__ == '__main__':
    main()
