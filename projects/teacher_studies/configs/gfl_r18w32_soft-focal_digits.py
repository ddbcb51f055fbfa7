# gfl_r18w32_focal_digits.py (beside this file) with a softened target: the assigned class of a
# positive location is trained towards 0.7 instead of 1 (label smoothing of the positives), which
# caps the teacher's confidence and makes it under-confident.
#   python tools/train.py projects/teacher_studies/configs/gfl_r18w32_soft-focal_digits.py
_base_ = ['./gfl_r18w32_focal_digits.py']

model = dict(bbox_head=dict(loss_cls=dict(pos_target=0.7)))
