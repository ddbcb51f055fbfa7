"""Which checkpoint ``--resume`` picks, and which one an error about a damaged file suggests."""
import os
import os.path as osp

import pytest
import torch

from mmkdcal.utils.checkpoint_files import (ResumeError, checkpoint_template, is_complete,
                                            previous_checkpoint, resolve_resume)


def _save(path, step):
    torch.save({'state_dict': {'w': torch.full((64, ), float(step))}, 'meta': {'iter': step}},
               path)
    return str(path)


def _truncate(path):
    data = open(path, 'rb').read()
    with open(path, 'wb') as f:
        f.write(data[:len(data) // 2])
    return str(path)


def _point(work, path):
    with open(osp.join(work, 'last_checkpoint'), 'w') as f:
        f.write(str(path))


def test_template_follows_the_hook():
    assert checkpoint_template(dict(type='CheckpointHook', by_epoch=False)) == 'iter_{}.pth'
    assert checkpoint_template(dict(type='CheckpointHook')) == 'epoch_{}.pth'
    assert checkpoint_template(None) == 'epoch_{}.pth'
    assert checkpoint_template(dict(filename_tmpl='ckpt_{}.pth', by_epoch=False)) == 'ckpt_{}.pth'


def test_without_last_checkpoint_the_newest_by_step_wins(tmp_path):
    for step in (2, 4, 10):
        _save(tmp_path / f'iter_{step}.pth', step)
    (tmp_path / 'epoch_99.pth').write_bytes(b'other kind')
    # numeric order: iter_10 is newer than iter_4 (a string sort would pick iter_4)
    assert resolve_resume(str(tmp_path), 'iter_{}.pth') == str(tmp_path / 'iter_10.pth')
    assert resolve_resume(str(tmp_path), 'epoch_{}.pth') == str(tmp_path / 'epoch_99.pth')


def test_last_checkpoint_is_used_when_it_names_the_newest(tmp_path):
    for step in (2, 4):
        _save(tmp_path / f'iter_{step}.pth', step)
    _point(tmp_path, tmp_path / 'iter_4.pth')
    assert resolve_resume(str(tmp_path), 'iter_{}.pth') == str(tmp_path / 'iter_4.pth')


def test_last_checkpoint_older_than_a_checkpoint_is_refused(tmp_path):
    for step in (2, 4):
        _save(tmp_path / f'iter_{step}.pth', step)
    _point(tmp_path, tmp_path / 'iter_2.pth')
    with pytest.raises(ResumeError) as err:
        resolve_resume(str(tmp_path), 'iter_{}.pth')
    msg = str(err.value)
    assert 'iter_2.pth' in msg and f'--resume {tmp_path / "iter_4.pth"}' in msg


def test_last_checkpoint_naming_a_missing_file(tmp_path):
    _point(tmp_path, tmp_path / 'iter_8.pth')
    with pytest.raises(ResumeError, match='iter_8.pth, which does not exist'):
        resolve_resume(str(tmp_path), 'iter_{}.pth')
    _save(tmp_path / 'iter_6.pth', 6)
    assert resolve_resume(str(tmp_path), 'iter_{}.pth') == str(tmp_path / 'iter_6.pth')
    # an empty pointer (a save killed while writing it) counts as missing
    (tmp_path / 'last_checkpoint').write_text('')
    assert resolve_resume(str(tmp_path), 'iter_{}.pth') == str(tmp_path / 'iter_6.pth')


def test_nothing_to_resume_is_a_new_run(tmp_path):
    assert resolve_resume(str(tmp_path), 'iter_{}.pth') is None
    assert resolve_resume(str(tmp_path / 'not_yet'), 'iter_{}.pth') is None


def test_checkpoints_in_another_out_dir(tmp_path):
    work, out = tmp_path / 'work', tmp_path / 'out' / 'work'
    os.makedirs(work)
    os.makedirs(out)
    _save(out / 'iter_3.pth', 3)
    assert resolve_resume(str(work), 'iter_{}.pth', str(out)) == str(out / 'iter_3.pth')


def test_completeness_and_the_previous_complete_checkpoint(tmp_path):
    paths = [_save(tmp_path / f'iter_{s}.pth', s) for s in (2, 4, 10)]
    assert all(is_complete(p) for p in paths)
    _truncate(paths[2])
    assert not is_complete(paths[2])
    (tmp_path / 'empty.pth').write_bytes(b'')
    assert not is_complete(str(tmp_path / 'empty.pth'))
    assert previous_checkpoint(paths[2]) == paths[1]
    _truncate(paths[1])
    assert previous_checkpoint(paths[2]) == paths[0]
    assert previous_checkpoint(paths[0]) is None


def test_legacy_checkpoints_are_complete_and_other_files_are_not(tmp_path):
    """A legacy (pre-zip) torch file has no end record: it counts as complete when it starts as a
    pickle stream does (protocol 2, torch's default, or a later one); zeros left by a crash, text
    or a single byte are no checkpoint."""
    legacy = str(tmp_path / 'legacy.pth')
    torch.save({'state_dict': {'w': torch.ones(4)}}, legacy, _use_new_zipfile_serialization=False)
    assert open(legacy, 'rb').read(2) == b'\x80\x02'  # the stream starts PROTO 2
    assert is_complete(legacy)
    proto4 = str(tmp_path / 'proto4.pth')
    torch.save({'w': torch.ones(2)}, proto4, _use_new_zipfile_serialization=False,
               pickle_protocol=4)
    assert is_complete(proto4)
    for name, data in (('zeros.pth', bytes(4096)), ('text.pth', b'not a checkpoint'),
                       ('one.pth', b'\x80'), ('proto1.pth', b'\x80\x01rest'),
                       ('proto9.pth', b'\x80\x09rest')):
        (tmp_path / name).write_bytes(data)
        assert not is_complete(str(tmp_path / name)), name
    assert not is_complete(str(tmp_path / 'missing.pth'))
    # a complete legacy checkpoint is what an error about a damaged newer one suggests
    (tmp_path / 'iter_1.pth').write_bytes(open(legacy, 'rb').read())
    (tmp_path / 'iter_2.pth').write_bytes(bytes(64))
    assert previous_checkpoint(str(tmp_path / 'iter_2.pth')) == str(tmp_path / 'iter_1.pth')
