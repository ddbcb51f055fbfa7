"""README results tables: only the "(ours)" cells change, to hand-computed values."""
import glob
import os.path as osp
import re

import pytest

from tools.harness.matrix.collect import summarize
from tools.harness.matrix.tables import (BEGIN, END, NOT_MEASURED, TableError,
                                         calibration_twin, publish_readme)

from _helpers import ROOT

COCO_READMES = sorted(glob.glob(osp.join(ROOT, 'configs', '*', 'README.md')))


def _read(path):
    with open(path) as f:
        return f.read()


def _run(name, seed, ap, t=None, source='fitted', folder='configs/gfl'):
    """A complete run as collect writes it (only what the summary reads)."""
    return dict(name=name, config=f'{folder}/{name}.py', folder=folder, seed=seed,
                status='complete', metrics={'coco/bbox_mAP': ap, 'calib/dece': 0.1},
                teacher_temperature=dict(value=t, source=source if t is not None else None))


def _rows(text):
    block = text.split(BEGIN)[1].split(END)[0].strip().splitlines()
    return {re.match(r'`(.+)\.py`', r.split('|')[1].strip()).group(1):
            [c.strip() for c in r.strip()[1:-1].split('|')] for r in block[2:]}


def _outside(text):
    return re.sub(re.escape(BEGIN) + '.*?' + re.escape(END), '', text, flags=re.S)


def test_the_coco_readmes_have_marked_tables_that_publish_leaves_alone_without_results():
    assert {'gfl', 'retinanet', 'atss', 'fcos', 'faster_rcnn', 'dino', 'deformable_detr',
            'conditional_detr'} <= {osp.basename(osp.dirname(p)) for p in COCO_READMES}
    for path in COCO_READMES:
        text = _read(path)
        new, changed, rows = publish_readme(text, {}, {})
        assert new == text and changed == []
        names = {osp.splitext(osp.basename(p))[0]
                 for p in glob.glob(osp.join(osp.dirname(path), '*.py'))}
        assert set(rows) == names, path  # every config of the folder has its row


def test_planted_results_fill_the_ours_cells_only():
    summary = summarize([
        # KD: AP 40.1 / 40.5 / 40.9 -> mean 40.5, sample std 0.4
        _run('kd_gfl_r50_r101_1x_coco', 0, 0.401, 1.0, 'config'),
        _run('kd_gfl_r50_r101_1x_coco', 1, 0.405, 1.0, 'config'),
        _run('kd_gfl_r50_r101_1x_coco', 2, 0.409, 1.0, 'config'),
        # KD+cal: 41.0 / 40.9 / 41.5 -> mean 41.133, std 0.321; paired with KD: +0.9, +0.4,
        # +0.6 -> mean +0.633, std 0.252; T 0.81 / 0.83 / 0.85 -> 0.830 +- 0.020
        _run('kd-cal_gfl_r50_r101_1x_coco', 0, 0.410, 0.81),
        _run('kd-cal_gfl_r50_r101_1x_coco', 1, 0.409, 0.83),
        _run('kd-cal_gfl_r50_r101_1x_coco', 2, 0.415, 0.85),
        # LD+cal, one seed, per-class temperatures (shown: their mean 1.1); its twin has none
        _run('ld-cal_gfl_r50_r101_1x_coco', 0, 0.398, [1.0, 1.2]),
        # an incomplete run is not used
        dict(_run('kd-pkd_gfl_r50_r101_1x_coco', 0, 0.5), status='partial'),
    ])
    releases = {'kd-cal_gfl_r50_r101_1x_coco': dict(
        file='work_dirs/release/kd-cal_gfl_r50_r101_1x_coco_seed1-0123abcd.pth',
        sha256='0123abcd' + 'f' * 56, link='https://example.org/m/kd-cal_seed1-0123abcd.pth')}
    text = _read(osp.join(ROOT, 'configs/gfl/README.md'))
    new, changed, _ = publish_readme(text, summary, releases)
    assert sorted(changed) == ['kd-cal_gfl_r50_r101_1x_coco', 'kd_gfl_r50_r101_1x_coco',
                               'ld-cal_gfl_r50_r101_1x_coco']
    rows, old = _rows(new), _rows(text)
    assert rows['kd_gfl_r50_r101_1x_coco'][5:] == ['40.5 ± 0.4 (3 seeds)', '+0.3', '-', '-', '-']
    assert rows['kd-cal_gfl_r50_r101_1x_coco'][5:] == [
        '41.1 ± 0.3 (3 seeds)', '+0.9', '+0.6 ± 0.3', '0.830 ± 0.020',
        '[model](https://example.org/m/kd-cal_seed1-0123abcd.pth) `0123abcd`']
    assert rows['ld-cal_gfl_r50_r101_1x_coco'][5:] == ['39.8', '-0.4', '-', '1.100', '-']
    for name in ('kd-pkd_gfl_r50_r101_1x_coco', 'kd-cal-pkd_gfl_r50_r101_1x_coco',
                 'ld_gfl_r50_r101_1x_coco'):
        assert rows[name][5:] == [NOT_MEASURED, '-', '-', '-', '-']
    for name in rows:  # config, student, teacher and the published APs are kept
        assert rows[name][:5] == old[name][:5]
    assert _outside(new) == _outside(text)
    # publishing the same results again changes nothing; without results it is the original
    assert publish_readme(new, summary, releases)[0] == new
    assert publish_readme(new, {}, {})[0] == text


def test_an_unpublished_student_is_compared_with_our_baseline_run():
    summary = summarize([
        _run('faster-rcnn_r18_fpn_1x_coco', 0, 0.300, folder='configs/faster_rcnn'),
        _run('kd_faster-rcnn_r18_r101_1x_coco', 0, 0.312, 1.0, 'config',
             folder='configs/faster_rcnn'),
        _run('kd_faster-rcnn_r50_r101_1x_coco', 0, 0.381, 1.0, 'config',
             folder='configs/faster_rcnn'),
    ])
    text = _read(osp.join(ROOT, 'configs/faster_rcnn/README.md'))
    rows = _rows(publish_readme(text, summary, {})[0])
    assert rows['faster-rcnn_r18_fpn_1x_coco'][5:7] == ['30.0', '-']  # the baseline itself
    assert rows['kd_faster-rcnn_r18_r101_1x_coco'][5:7] == ['31.2', '+1.2 (vs ours)']
    assert rows['kd_faster-rcnn_r50_r101_1x_coco'][5:7] == ['38.1', '+0.7']  # vs published 37.4
    # no baseline result: no delta
    rows = _rows(publish_readme(text, summarize([
        _run('kd_faster-rcnn_r18_r101_1x_coco', 0, 0.312, folder='configs/faster_rcnn')]),
        {})[0])
    assert rows['kd_faster-rcnn_r18_r101_1x_coco'][5:7] == ['31.2', '-']


@pytest.mark.parametrize('name,twin', [
    ('kd-cal_gfl_r50_r101_1x_coco', 'kd_gfl_r50_r101_1x_coco'),
    ('kd-cal-pkd_gfl_r50_r101_1x_coco', 'kd-pkd_gfl_r50_r101_1x_coco'),
    ('ld-cal_gfl_r50_r101_1x_coco', 'ld_gfl_r50_r101_1x_coco'),
    ('dkd-cal_faster-rcnn_r18_r101_1x_coco', 'dkd_faster-rcnn_r18_r101_1x_coco'),
    ('kd_gfl_r50_r101_1x_coco', None),
    ('faster-rcnn_r18_fpn_1x_coco', None),
    ('calibrated_x', None),
])
def test_calibration_twin(name, twin):
    assert calibration_twin(name) == twin


def test_bad_tables_fail_with_the_reason():
    header = ('| Config | Student AP (ours) |\n| --- | --- |\n')
    row = '| `a.py` | not yet measured |\n'
    ok = f'x\n{BEGIN}\n{header}{row}{END}\ny\n'
    assert publish_readme(ok, {}, {})[0] == ok
    with pytest.raises(TableError, match='no results table'):
        publish_readme('# a README without markers\n', {}, {})
    with pytest.raises(TableError, match='has no'):
        publish_readme(f'{BEGIN}\n{header}{row}', {}, {})
    with pytest.raises(TableError, match='without a'):
        publish_readme(f'{header}{row}{END}\n', {}, {})
    with pytest.raises(TableError, match='unknown generated column'):
        publish_readme(f'{BEGIN}\n| Config | AP (ours) |\n| --- | --- |\n{row}{END}\n', {}, {})
    with pytest.raises(TableError, match='2 cells, the header 3'):
        publish_readme(f'{BEGIN}\n| Config | Student AP (ours) | x |\n| --- | --- | --- |\n'
                       f'{row}{END}\n', {}, {})
    with pytest.raises(TableError, match='appears twice'):
        publish_readme(f'{BEGIN}\n{header}{row}{row}{END}\n', {}, {})
    with pytest.raises(TableError, match='only one markdown table'):
        publish_readme(f'{BEGIN}\n{header}{row}some text\n{END}\n', {}, {})
