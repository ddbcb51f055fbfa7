# Student baseline for the DETR part of the DigitsDet demo (no distillation): DINO with a
# ResNet-18 of base width 16 (channels 16/32/64/128) and a single encoder layer; the decoder
# (width 256, 3 layers, 30 queries) is the teacher's design, so that both alignments of the DETR
# distillers apply ('hungarian' and 'shared_queries').
#   python tools/train.py configs/demo/dino_r18w16_digits.py
# Everything else (data, schedule, head, matcher) is inherited from the teacher config
# configs/demo/dino_r18w32_digits.py.
_base_ = ['./dino_r18w32_digits.py']

model = dict(
    backbone=dict(base_channels=16),
    neck=dict(in_channels=[64, 128]),
    encoder=dict(num_layers=1))
