"""tools/analysis/rank_teachers.py on DigitsDet demo teachers and CIFAR-format classifiers.

Planted teachers: copies of one teacher whose classification layer is multiplied by a factor, so
the collected logits are multiplied by it too. Then the fitted T scales by the same factor, the
calibration error after T and the mAP/accuracy are those of the original, and the numbers of the
original equal what tools/calibrate.py and tools/test.py report for it.
"""
import importlib.util
import json
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from mmdet.registry import MODELS

import mmkdcal  # noqa: F401
from mmkdcal.utils.checkpoint import load_checkpoint_file

from _helpers import ROOT, last_checkpoint, write_cifar100_like

torch.set_num_threads(1)
TEACHER = 'mmkdcal::demo/gfl_r18w32_digits.py'
BUILD = dict(n_train=64, n_calib=32, n_val=32)


def _main(tool, *argv):
    """Run ``tools/<tool>``'s ``main(argv)`` in this process (no interpreter start-up)."""
    spec = importlib.util.spec_from_file_location('_tool', osp.join(ROOT, 'tools', tool))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main([str(a) for a in argv])


def _digits_options(root):
    opts = ['model.test_cfg.score_thr=0.0', 'default_hooks.visualization.draw=False',
            f'val_evaluator.0.ann_file={root}/annotations/val.json',
            f'test_evaluator.0.ann_file={root}/annotations/val.json']
    for split in ('train', 'val', 'test'):
        opts += [f'{split}_dataloader.num_workers=0',
                 f'{split}_dataloader.persistent_workers=False',
                 f'{split}_dataloader.dataset.data_root={root}/']
        opts += [f'{split}_dataloader.dataset.build_cfg.{k}={v}' for k, v in BUILD.items()]
    return opts


def _scaled(ckpt, keys, factor, path):
    state = load_checkpoint_file(ckpt)['state_dict']
    state = {k: v * factor if k in keys else v for k, v in state.items()}
    torch.save({'state_dict': state}, path)
    return path


@pytest.fixture(scope='module')
def digits_teachers(tmp_path_factory):
    """A briefly trained demo teacher (GFL, width 32) and two planted copies."""
    tmp = tmp_path_factory.mktemp('digits_teachers')
    root = str(tmp / 'digits')
    opts = _digits_options(root)
    work = str(tmp / 'teacher')
    _main('train.py', TEACHER, '--work-dir', work, '--cfg-options', *opts,
          'train_cfg.max_iters=20', 'train_cfg.val_interval=1000',
          'default_hooks.checkpoint.interval=20', 'param_scheduler.0.end=4',
          'param_scheduler.1.begin=4', 'param_scheduler.1.end=20',
          'train_dataloader.batch_size=8')
    ckpt = last_checkpoint(work)
    cls = ('bbox_head.gfl_cls.weight', 'bbox_head.gfl_cls.bias')
    return dict(tmp=tmp, opts=opts, raw=ckpt,
                x3=_scaled(ckpt, cls, 3.0, str(tmp / 'x3.pth')),
                half=_scaled(ckpt, cls, 0.5, str(tmp / 'half.pth')))


def test_ranks_digits_teachers_like_calibrate_and_test(digits_teachers, tmp_path, capsys):
    t, out = digits_teachers, tmp_path / 'rank'
    _main('analysis/rank_teachers.py', '--split', 'val', '--score-thr', '0.0', '--out', out,
          '--teacher', TEACHER, t['raw'], 'raw', '--teacher', TEACHER, t['x3'], 'x3',
          '--teacher', TEACHER, t['half'], 'half', '--cfg-options', *t['opts'])
    log = capsys.readouterr().out
    assert 'Ranking teachers: 3/3 (100%)' in log and 'ETA' in log
    result = json.loads((out / 'ranking.json').read_text())
    rows = {r['name']: r for r in result['teachers']}
    assert result['fit_on'] == 'detections' and result['sort_by'] == 'dece'
    assert [r['rank'] for r in result['teachers']] == [1, 2, 3]
    dece = [r['dece'] for r in result['teachers']]
    assert dece == sorted(dece)
    raw = rows['raw']
    assert raw['num_samples'] > 100 and 0 < raw['map'] < 1
    for name, factor in (('x3', 3.0), ('half', 0.5)):
        row = rows[name]
        assert row['num_samples'] == raw['num_samples']  # the same detections...
        assert row['temperature'] / raw['temperature'] == pytest.approx(factor, rel=2e-3)
        assert row['dece_after'] == pytest.approx(raw['dece_after'], abs=2e-3)
        assert row['map'] == pytest.approx(raw['map'], abs=1e-3)  # ...in the same order
    for row in rows.values():
        assert row['dece_over'] + row['dece_under'] == pytest.approx(row['dece'], abs=1e-12)
        assert row['dece_over_after'] + row['dece_under_after'] == pytest.approx(
            row['dece_after'], abs=1e-12)
    # the same teacher through tools/calibrate.py and tools/test.py
    cal_dir = tmp_path / 'cal'
    _main('calibrate.py', TEACHER, t['raw'], '--split', 'val', '--score-thr', '0.0',
          '--out', cal_dir, '--cfg-options', *t['opts'])
    reference = json.loads((cal_dir / 'calibration.json').read_text())
    assert raw['temperature'] == pytest.approx(reference['temperature'], rel=1e-9)
    for stage, suffix in (('before', ''), ('after', '_after')):
        for key, value in reference[stage].items():
            assert raw[key + suffix] == pytest.approx(value, rel=1e-9, abs=1e-12), key
    assert json.loads(open(raw['calibration_json']).read()) == reference
    metrics = _main('test.py', TEACHER, t['raw'], '--work-dir', tmp_path / 'test',
                    '--cfg-options', *t['opts'])
    assert raw['map'] == pytest.approx(float(metrics['coco/bbox_mAP']), abs=1e-12)
    md = (out / 'ranking.md').read_text()
    assert md.count('\n| ') == 4 and '| rank | teacher | mAP |' in md
    assert (out / 'ranking.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    assert osp.isfile(out / 'x3' / 'calibration.png')


def test_ranks_cifar_classifiers(tmp_path):
    """Random CIFAR-format data and teachers: accuracy as tools/test.py, ECE as torchmetrics."""
    from torchmetrics.classification import MulticlassCalibrationError
    cfg_dir = osp.join(ROOT, 'configs/classification/cifar100')
    data = str(tmp_path / 'cifar')
    write_cifar100_like(data, n_train=0, n_test=32, seed=1)
    opts = [f'{s}_dataloader.{k}' for s in ('val', 'test')
            for k in ('num_workers=0', 'persistent_workers=False', 'batch_size=16',
                      f'dataset.data_root={data}')]
    ckpts = {}
    for name, arch in (('r8x4', 'resnet8x4'), ('wrn16-2', 'wrn16-2')):
        torch.manual_seed(len(ckpts))
        cfg = osp.join(cfg_dir, f'{arch}_240e_cifar100.py')
        model = MODELS.build(Config.fromfile(cfg).model)
        ckpts[name] = (cfg, str(tmp_path / f'{name}.pth'))
        torch.save({'state_dict': model.state_dict()}, ckpts[name][1])
    ckpts['r8x4_x50'] = (ckpts['r8x4'][0], _scaled(  # planted over-confidence
        ckpts['r8x4'][1], ('backbone.fc.weight', 'backbone.fc.bias'), 50.0,
        str(tmp_path / 'x50.pth')))
    out = tmp_path / 'rank'
    args = []
    for name, (cfg, ckpt) in ckpts.items():
        args += ['--teacher', cfg, ckpt, name]
    _main('analysis/rank_teachers.py', '--split', 'test', '--objective', 'ece', '--n-bins', '10',
          '--sort-by', 'ece', '--out', out, *args, '--cfg-options', *opts)
    result = json.loads((out / 'ranking.json').read_text())
    rows = {r['name']: r for r in result['teachers']}
    assert result['fit_on'] == 'logits' and result['teachers'][-1]['name'] == 'r8x4_x50'
    x50 = rows['r8x4_x50']
    assert x50['acc'] == rows['r8x4']['acc']  # scaling the logits keeps every arg-max
    assert x50['ece_over'] > 0.9 * x50['ece'] and x50['ece_over'] > 5 * x50['ece_under']
    assert x50['temperature'] > 1.0
    for row in rows.values():
        assert row['num_samples'] == 32
        assert row['ece_over'] + row['ece_under'] == pytest.approx(row['ece'], abs=1e-12)
        assert row['ace_over'] + row['ace_under'] == pytest.approx(row['ace'], abs=1e-12)
    # references: the accuracy tools/test.py reports, the ECE torchmetrics computes
    metrics = _main('test.py', ckpts['r8x4_x50'][0], ckpts['r8x4_x50'][1], '--work-dir',
                    tmp_path / 'test', '--cfg-options', *opts)
    assert 100 * x50['acc'] == pytest.approx(float(metrics['accuracy/top1']), abs=1e-9)
    cfg = Config.fromfile(ckpts['r8x4_x50'][0])
    model = MODELS.build(cfg.model)
    model.load_state_dict(load_checkpoint_file(ckpts['r8x4_x50'][1])['state_dict'])
    model.eval()
    from mmengine.runner import Runner
    cfg.test_dataloader.update(num_workers=0, persistent_workers=False)
    cfg.test_dataloader.dataset.data_root = data
    logits, labels = [], []
    with torch.no_grad():
        for batch in Runner.build_dataloader(cfg.test_dataloader):
            batch = model.data_preprocessor(batch, False)
            logits.append(model(batch['inputs'], batch['data_samples'], mode='tensor'))
            labels += [int(s.gt_label) for s in batch['data_samples']]
    logits, labels = torch.cat(logits), torch.tensor(labels)
    tm = MulticlassCalibrationError(num_classes=100, n_bins=10, norm='l1')
    assert x50['ece'] == pytest.approx(float(tm(logits.softmax(1), labels)), abs=1e-6)
    tm = MulticlassCalibrationError(num_classes=100, n_bins=10, norm='l1')
    after = float(tm((logits / x50['temperature']).softmax(1), labels))
    assert x50['ece_after'] == pytest.approx(after, abs=1e-6)
    md = (out / 'ranking.md').read_text()
    assert '| rank | teacher | Acc | ECE | ECE over |' in md and md.count('\n| ') == 4
