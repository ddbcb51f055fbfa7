"""Checkpoint loading keeps weights_only=True: allow-listed MMEngine objects load, others don't."""
import os
import pickle

import numpy as np
import pytest
import torch

import mmkdcal  # noqa: F401  (installs the allow-list)
from mmkdcal.utils.checkpoint import UnsafeCheckpointError, load_checkpoint_file


class Payload:
    """An arbitrary object; unpickling it must never run its code."""
    ran = False

    def __reduce__(self):
        return (Payload._mark, ())

    @staticmethod
    def _mark():
        Payload.ran = True
        return 'pwned'


def test_arbitrary_object_is_refused_with_a_clear_message(tmp_path):
    path = str(tmp_path / 'evil.pth')
    torch.save({'state_dict': {'w': torch.ones(2)}, 'meta': {'x': Payload()}}, path)
    with pytest.raises(UnsafeCheckpointError) as err:
        load_checkpoint_file(path)
    assert Payload.ran is False
    msg = str(err.value)
    assert 'evil.pth' in msg and 'allow-list' in msg and 'add_safe_globals' in msg
    assert isinstance(err.value, pickle.UnpicklingError)


def test_mmengine_loader_uses_the_safe_path(tmp_path):
    from mmengine.runner.checkpoint import _load_checkpoint
    path = str(tmp_path / 'evil.pth')
    torch.save({'meta': {'x': Payload()}}, path)
    with pytest.raises(UnsafeCheckpointError):
        _load_checkpoint(path, map_location='cpu')
    assert Payload.ran is False


def test_mmengine_objects_and_numpy_load(tmp_path):
    from mmengine.logging import HistoryBuffer
    buf = HistoryBuffer()
    buf.update(1.5)
    buf.update(2.5)
    path = str(tmp_path / 'ok.pth')
    torch.save({'state_dict': {'w': torch.arange(3.)},
                'meta': {'hub': {'loss': buf}, 'arr': np.arange(4, dtype=np.int64),
                         'scalar': np.float64(0.25), 'seed': 3}}, path)
    ckpt = load_checkpoint_file(path)
    assert torch.equal(ckpt['state_dict']['w'], torch.arange(3.))
    assert ckpt['meta']['hub']['loss'].mean() == pytest.approx(2.0)
    assert ckpt['meta']['arr'].tolist() == [0, 1, 2, 3]
    assert ckpt['meta']['scalar'] == 0.25


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        load_checkpoint_file(str(tmp_path / 'nope.pth'))


class SystemCall:
    """A planted ``os.system`` payload: unpickling it would create ``self.marker``."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}', ))


@pytest.mark.parametrize('force_no_weights_only', [False, True])
def test_reduce_payload_is_refused_naming_the_global(tmp_path, monkeypatch,
                                                     force_no_weights_only):
    """Through MMEngine's loader too, also when the environment asks torch for full unpickling
    (TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD overrides only a torch.load that does not pass
    weights_only itself)."""
    from mmengine.runner.checkpoint import _load_checkpoint
    if force_no_weights_only:
        monkeypatch.setenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', '1')
    marker = tmp_path / 'payload_ran'
    path = str(tmp_path / 'evil.pth')
    torch.save({'state_dict': {'w': torch.ones(2)}, 'meta': {'x': SystemCall(marker)}}, path)
    for load in (load_checkpoint_file, lambda p: _load_checkpoint(p, map_location='cpu')):
        with pytest.raises(UnsafeCheckpointError) as err:
            load(path)
        msg = str(err.value)
        assert f'{os.system.__module__}.system' in msg  # posix.system
        assert 'evil.pth' in msg
        assert 'weights_only' not in msg  # no advice to turn the safety off
    assert not marker.exists()


def test_install_is_idempotent_and_replaces_only_the_local_loader():
    from mmengine.runner.checkpoint import CheckpointLoader
    from mmkdcal.utils import checkpoint
    checkpoint.install()
    schemes = dict(CheckpointLoader._schemes)
    safe = list(torch.serialization.get_safe_globals())
    checkpoint.install()
    assert dict(CheckpointLoader._schemes) == schemes
    assert list(torch.serialization.get_safe_globals()) == safe
    assert schemes[''] is load_checkpoint_file
    # the URL and other loaders are MMEngine's own
    import mmengine.runner.checkpoint as mmengine_checkpoint
    others = {k: v for k, v in schemes.items() if k != ''}
    assert others and all(v.__module__ == mmengine_checkpoint.__name__ for v in others.values())
    assert all(g in safe for g in checkpoint.ALLOWED_GLOBALS)
