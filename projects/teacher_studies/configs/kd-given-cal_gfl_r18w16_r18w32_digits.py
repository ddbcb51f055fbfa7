# configs/demo/kd_gfl_r18w16_r18w32_digits.py with the teacher calibrated by a saved
# calibrator state (temperature, per-class temperature, Platt, isotonic) that the study's teacher
# measurement fitted on the calib split: TeacherCalibrationHook uses the file as is.
#   python tools/train.py \
#       projects/teacher_studies/configs/kd-given-cal_gfl_r18w16_r18w32_digits.py \
#       --cfg-options custom_hooks.0.calibrator_file=FILE custom_hooks.0.calibrator_sha256=SHA ...
_base_ = ['../../../configs/demo/kd_gfl_r18w16_r18w32_digits.py']

custom_imports = dict(imports=['mmkdcal'], allow_failed_imports=False)
model = dict(teacher_temperature=None)
custom_hooks = [dict(type='TeacherCalibrationHook', calibrator_file='', calibrator_sha256=None)]
