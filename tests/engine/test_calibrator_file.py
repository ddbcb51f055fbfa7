"""TeacherCalibrationHook(calibrator_file=...): a saved calibrator reaches the distiller bit for
bit, maps the teacher's logits as computed by hand, is kept in checkpoints and on resume, and a
wrong sha256, another teacher, a wrong class count or an unsafe file is refused by field."""
import logging
from types import SimpleNamespace

import pytest
import torch

import mmkdcal  # noqa: F401
from mmkdcal.engine import fingerprint_as_teacher, load_calibrator_file, save_calibrator_file
from mmkdcal.engine.hooks import TeacherCalibrationHook
from mmkdcal.engine.hooks.teacher_calibration_hook import teacher_fingerprint
from mmkdcal.utils.checkpoint import UnsafeCheckpointError

from _helpers import distiller, gfl_model, save_teacher

torch.set_num_threads(1)

KD = dict(loss_kd=dict(type='BinaryKDLoss', inputs='cls', beta=0.0, loss_weight=1.0))
#: Platt per class (3 classes): a = (0.5, 2, 1), b = (0.25, -0.5, 0); class 2 the identity.
PLATT = dict(calibrator='platt', mode='sigmoid', a=torch.tensor([0.5, 2.0, 1.0]),
             b=torch.tensor([0.25, -0.5, 0.0]), identity_classes=[2])


@pytest.fixture(scope='module')
def pair(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('pair')
    cfg_path, ckpt, teacher = save_teacher(gfl_model(width=8), tmp)
    model = distiller(gfl_model(width=8), cfg_path, ckpt, teacher_temperature=None,
                      distill_losses=KD)
    return SimpleNamespace(tmp=tmp, ckpt=ckpt, teacher=teacher, model=model,
                           fingerprint=fingerprint_as_teacher(teacher))


def _runner(model, resume=False):
    return SimpleNamespace(model=model, _resume=resume, logger=logging.getLogger('test'))


def _reset(model):
    model._teacher_calibrator, model.temperature_source = None, None


def test_a_saved_platt_state_reaches_the_distiller_and_maps_logits_by_hand(pair):
    # the distiller's teacher (BatchNorm folded) has the fingerprint the file's writer computes
    assert pair.fingerprint == teacher_fingerprint(pair.model.teacher,
                                                   pair.model.teacher_inference)
    path = str(pair.tmp / 'platt.pth')
    sha = save_calibrator_file(path, PLATT, pair.ckpt, pair.fingerprint)
    _reset(pair.model)
    hook = TeacherCalibrationHook(calibrator_file=path, calibrator_sha256=sha)
    hook.before_run(_runner(pair.model))
    got = pair.model.teacher_calibration
    assert pair.model.temperature_source == 'calibrator_file'
    assert got['calibrator'] == 'platt' and got['identity_classes'] == [2]
    for key in ('a', 'b'):
        assert got[key].dtype == torch.float32 and torch.equal(got[key], PLATT[key])
    z = torch.tensor([[1.0, -2.0, 0.5], [0.0, 4.0, -3.0]])
    # a_c z_c + b_c: (0.5 + 0.25, -4 - 0.5, 0.5) and (0.25, 8 - 0.5, -3)
    assert torch.equal(pair.model.scale_teacher_logits(z),
                       torch.tensor([[0.75, -4.5, 0.5], [0.25, 7.5, -3.0]]))

    # saved with its source; a resume with the same config keeps it without a warning
    ckpt = {}
    hook.before_save_checkpoint(_runner(pair.model), ckpt)
    meta = ckpt['meta']
    assert meta['teacher_temperature_source'] == 'calibrator_file'
    assert meta['teacher_calibrator_file'] == dict(path=path, sha256=sha)
    assert meta['teacher_fingerprint'] == pair.fingerprint
    _reset(pair.model)
    again = TeacherCalibrationHook(calibrator_file=path, calibrator_sha256=sha)
    again.before_run(_runner(pair.model, resume=True))
    logger = logging.getLogger('test')
    with pytest.MonkeyPatch.context() as mp:
        warned = []
        mp.setattr(logger, 'warning', warned.append)
        again.after_load_checkpoint(_runner(pair.model, resume=True), ckpt)
    assert warned == [] and pair.model.temperature_source == 'calibrator_file'
    # a resume whose config no longer names the file restores the state from the checkpoint
    _reset(pair.model)
    TeacherCalibrationHook().after_load_checkpoint(_runner(pair.model, resume=True), ckpt)
    assert pair.model.temperature_source == 'checkpoint'
    assert torch.equal(pair.model.teacher_calibration['a'], PLATT['a'])
    assert torch.equal(pair.model.teacher_calibration['b'], PLATT['b'])
    # the checkpoint itself serves as a calibrator file
    torch.save(ckpt, str(pair.tmp / 'run.pth'))
    state, _ = load_calibrator_file(str(pair.tmp / 'run.pth'))
    assert torch.equal(state['a'], PLATT['a']) and state['calibrator'] == 'platt'


def test_wrong_sha_other_teacher_and_class_count_are_refused_by_field(pair):
    path = str(pair.tmp / 'ok.pth')
    save_calibrator_file(path, PLATT, pair.ckpt, pair.fingerprint)
    _reset(pair.model)
    with pytest.raises(ValueError, match=r'calibrator_sha256: .* has sha256 [0-9a-f]{64}'):
        TeacherCalibrationHook(calibrator_file=path,
                               calibrator_sha256='0' * 64).before_run(_runner(pair.model))
    with pytest.raises(ValueError, match='calibrator_sha256 must be the 64 hex digits'):
        TeacherCalibrationHook(calibrator_file=path, calibrator_sha256='abc')
    other = str(pair.tmp / 'other.pth')
    save_calibrator_file(other, PLATT, 'other.pth', 'f' * 16)
    with pytest.raises(ValueError, match=r'calibrator_file: .*teacher_fingerprint f{16}'):
        TeacherCalibrationHook(calibrator_file=other).before_run(_runner(pair.model))
    four = str(pair.tmp / 'four.pth')
    save_calibrator_file(four, dict(PLATT, a=torch.ones(4), b=torch.zeros(4)), pair.ckpt,
                         pair.fingerprint)
    with pytest.raises(ValueError, match=r'calibrator_file: .* has 4 classes .* have 3'):
        TeacherCalibrationHook(calibrator_file=four).before_run(_runner(pair.model))
    assert not pair.model.has_teacher_temperature  # nothing was set by a refused file
    with pytest.raises(FileNotFoundError, match='calibrator_file: .* does not exist'):
        TeacherCalibrationHook(calibrator_file=str(pair.tmp / 'nope.pth')).before_run(
            _runner(pair.model))
    pair.model.set_teacher_temperature(1.5, source='config')
    with pytest.raises(ValueError, match='calibrator_file and model.teacher_temperature'):
        TeacherCalibrationHook(calibrator_file=path).before_run(_runner(pair.model))
    _reset(pair.model)


class _Payload:
    def __reduce__(self):
        return (print, ('unpickled',))


def test_a_file_with_objects_outside_the_allow_list_is_not_unpickled(pair, capsys):
    path = str(pair.tmp / 'evil.pth')
    torch.save(dict(meta=dict(teacher_calibration=_Payload())), path)
    with pytest.raises(UnsafeCheckpointError, match='unpickle `print`'):
        load_calibrator_file(path)
    assert 'unpickled' not in capsys.readouterr().out
