"""Checkpoint loading keeps weights_only=True: allow-listed MMEngine objects load, others don't."""
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
