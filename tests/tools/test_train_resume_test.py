"""End to end through the command-line tools: train, resume (weights_only path), test."""
import subprocess
import sys

from _helpers import (dump_config, last_checkpoint, retinanet_model, run_tool, train_config,
                      write_coco)


def test_train_resume_and_test_a_stock_detector(tmp_path):
    data = write_coco(str(tmp_path / 'data'), n_images=6)
    cfg = train_config(retinanet_model(), data, max_iters=4, checkpoint_interval=2)
    cfg_path = dump_config(cfg, str(tmp_path / 'retinanet_tiny.py'))
    work = str(tmp_path / 'work')

    run_tool('tools/train.py', cfg_path, '--work-dir', work,
             '--cfg-options', 'train_cfg.max_iters=2', 'train_cfg.val_interval=100')
    ckpt2 = last_checkpoint(work)
    assert ckpt2.endswith('iter_2.pth')
    # premise: without mmkdcal's allow-list, torch's default weights_only load rejects it
    proc = subprocess.run([sys.executable, '-c', f'import torch; torch.load({ckpt2!r})'],
                          capture_output=True, text=True)
    assert proc.returncode != 0 and 'HistoryBuffer' in proc.stderr

    out = run_tool('tools/train.py', cfg_path, '--work-dir', work, '--resume')
    assert 'resumed epoch: 0, iter: 2' in out
    # resumed training runs iterations 3 and 4 only, and validates at the end
    assert 'Iter(train) [3/4]' in out and 'Iter(train) [1/4]' not in out
    ckpt4 = last_checkpoint(work)
    assert ckpt4.endswith('iter_4.pth')
    from mmkdcal.utils.checkpoint import load_checkpoint_file
    state = load_checkpoint_file(ckpt4)
    assert state['meta']['iter'] == 4
    assert 'coco/bbox_mAP' in out

    out = run_tool('tools/test.py', cfg_path, ckpt4, '--work-dir', str(tmp_path / 'test'))
    for key in ('coco/bbox_mAP', 'coco/bbox_mAP_50', 'coco/bbox_mAP_75'):
        assert key in out
    # the logged numbers are in [0, 1] (mmdet logs them with 4 decimals)
    line = [ln for ln in out.splitlines() if 'coco/bbox_mAP:' in ln][-1]
    value = float(line.split('coco/bbox_mAP:')[1].split()[0])
    assert 0.0 <= value <= 1.0
