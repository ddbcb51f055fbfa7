# KD from a calibrated teacher (Kim et al., "The Role of Teacher Calibration in
# Knowledge Distillation", IEEE Access 2025): before training, TeacherCalibrationHook fits the
# teacher's temperature by minimising the NLL on the calibration dataloader (default: the
# val_dataloader, i.e. the CIFAR-100 test split, as the benchmark has no other held-out split);
# the distillation losses then see teacher logits divided by that temperature.
_base_ = ['./kd_wrn16-2_wrn40-2_240e_cifar100.py']

model = dict(teacher_temperature=None)  # None: fitted by TeacherCalibrationHook
custom_hooks = [dict(type='TeacherCalibrationHook', objective='nll')]
