# Binary KD from an *uncalibrated* teacher: RTMDet-x -> RTMDet-s, COCO: kd_rtmdet_s_m_300e_coco.py
# with the RTMDet-x teacher. The baseline of kd-cal_rtmdet_s_x_300e_coco.py.
#   python tools/train.py configs/rtmdet/kd_rtmdet_s_x_300e_coco.py
_base_ = './kd_rtmdet_s_m_300e_coco.py'

# Teacher weights: MMDetection model zoo, configs/rtmdet/metafile.yml, rtmdet_x_8xb32-300e_coco
# (box AP 52.6). Use a local copy with --cfg-options model.teacher_ckpt=/path/to/teacher.pth
teacher_ckpt = 'https://download.openmmlab.com/mmdetection/v3.0/rtmdet/rtmdet_x_8xb32-300e_coco/rtmdet_x_8xb32-300e_coco_20220715_230555-cc79b9ae.pth'  # noqa: E501

model = dict(
    teacher_config='mmdet::rtmdet/rtmdet_x_8xb32-300e_coco.py', teacher_ckpt=teacher_ckpt)
