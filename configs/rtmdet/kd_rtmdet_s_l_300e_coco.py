# Binary KD from an *uncalibrated* teacher: RTMDet-l -> RTMDet-s, COCO: kd_rtmdet_s_m_300e_coco.py
# with the RTMDet-l teacher. The baseline of kd-cal_rtmdet_s_l_300e_coco.py.
#   python tools/train.py configs/rtmdet/kd_rtmdet_s_l_300e_coco.py
_base_ = './kd_rtmdet_s_m_300e_coco.py'

# Teacher weights: MMDetection model zoo, configs/rtmdet/metafile.yml, rtmdet_l_8xb32-300e_coco
# (box AP 51.3). Use a local copy with --cfg-options model.teacher_ckpt=/path/to/teacher.pth
teacher_ckpt = 'https://download.openmmlab.com/mmdetection/v3.0/rtmdet/rtmdet_l_8xb32-300e_coco/rtmdet_l_8xb32-300e_coco_20220719_112030-5a0be7c4.pth'  # noqa: E501

model = dict(
    teacher_config='mmdet::rtmdet/rtmdet_l_8xb32-300e_coco.py', teacher_ckpt=teacher_ckpt)
