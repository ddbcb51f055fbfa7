"""EtaProgress (hand-computed ETAs on a fake clock) and the DigitsDet build's progress lines."""
import re

import pytest

from mmkdcal.utils.progress import EtaProgress, format_duration


class Clock:

    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


def test_eta_is_mean_time_per_unit_times_units_left():
    clock, lines = Clock(), []
    p = EtaProgress(10, 'job', log=lines.append, interval=5.0, clock=clock)
    assert p.eta() is None and p.line().endswith('ETA ?')
    clock.t += 4.0
    p.update(2)          # 2 units in 4 s -> 2 s/unit, 8 left -> 16 s
    assert p.eta() == pytest.approx(16.0)
    assert lines == ['job: 2/10 (20%), elapsed 0:00:04, ETA 0:00:16']
    clock.t += 2.0
    p.update(1)          # within the 5 s interval: not logged
    assert len(lines) == 1
    clock.t += 3.0
    p.update(2, note='(x)')  # 5 units in 9 s -> 1.8 s/unit, 5 left -> 9 s
    assert lines[-1] == 'job: 5/10 (50%), elapsed 0:00:09, ETA 0:00:09 (x)'
    p.update(5)          # the last unit is always logged
    assert lines[-1] == 'job: 10/10 (100%), elapsed 0:00:09, ETA 0:00:00'
    with pytest.raises(ValueError, match='total'):
        EtaProgress(0, 'x')


def test_format_duration():
    assert format_duration(3725) == '1:02:05'
    assert format_duration(59.6) == '0:01:00'
    assert format_duration(-3) == '0:00:00'


def test_digits_det_build_logs_progress_with_eta(tmp_path):
    from mmkdcal.datasets.digits_det import build_digits_det

    class Logger:
        def __init__(self):
            self.lines = []

        def info(self, msg):
            self.lines.append(msg)

    log = Logger()
    build_digits_det(str(tmp_path / 'dd'), n_train=6, n_calib=2, n_val=2, logger=log,
                     progress_interval=0.0)
    progress = [ln for ln in log.lines if 'ETA' in ln]
    assert len(progress) == 10  # one per image with interval 0
    done = [int(re.search(r': (\d+)/10 ', ln).group(1)) for ln in progress]
    assert done == list(range(1, 11))
    assert progress[0].endswith('(train split)') and progress[-1].endswith('(val split)')
    assert re.search(r'10/10 \(100%\), elapsed \d+:\d\d:\d\d, ETA 0:00:00', progress[-1])
