"""Checkpoint file names, completeness, and which one an error about a damaged file suggests."""

import torch

from mmkdcal.utils.checkpoint_files import checkpoint_template, is_complete, previous_checkpoint


def _save(path, step):
    torch.save({'state_dict': {'w': torch.full((64, ), float(step))}, 'meta': {'iter': step}},
               path)
    return str(path)


def _truncate(path):
    data = open(path, 'rb').read()
    with open(path, 'wb') as f:
        f.write(data[:len(data) // 2])
    return str(path)


def test_template_follows_the_hook():
    assert checkpoint_template(dict(type='CheckpointHook', by_epoch=False)) == 'iter_{}.pth'
    assert checkpoint_template(dict(type='CheckpointHook')) == 'epoch_{}.pth'
    assert checkpoint_template(None) == 'epoch_{}.pth'
    assert checkpoint_template(dict(filename_tmpl='ckpt_{}.pth', by_epoch=False)) == 'ckpt_{}.pth'


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
