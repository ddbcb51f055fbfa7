# configs/demo/kd_gfl_r18w16_r18w32_digits.py with the teacher calibrated by a saved
# calibrator state (temperature, per-class temperature, Platt, isotonic) that the study's teacher
# measurement fitted on the calib split: GivenTeacherCalibratorHook loads it before training.
#   python tools/train.py \
#       projects/teacher_studies/configs/kd-given-cal_gfl_r18w16_r18w32_digits.py \
#       --cfg-options custom_hooks.0.state_file=STATE custom_hooks.0.sha256=SHA ...
_base_ = ['../../../configs/demo/kd_gfl_r18w16_r18w32_digits.py']

custom_imports = dict(imports=['mmkdcal', 'projects.teacher_studies.studies.given_calibrator'],
                      allow_failed_imports=False)
model = dict(teacher_temperature=None)
custom_hooks = [dict(type='GivenTeacherCalibratorHook', state_file='', sha256='')]
