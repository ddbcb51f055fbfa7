"""The job runner (tools/harness/jobs.py): resume stamps, dependencies, slots, failures, progress.

Every command is a tiny ``python -c`` program, so the tests run in seconds."""
import json
import os.path as osp
import sys
import threading
import time

import pytest

from tools.harness.jobs import Job, JobFailed, job_stamp, run_jobs


def _py_job(tmp_path, name, code, deps=()):
    wd = str(tmp_path / name)

    def collect(job, d):
        with open(osp.join(job.work_dir, 'out.json')) as f:
            return json.load(f)
    return Job(name, wd, lambda d: ['-c', code.replace('WD', wd)], collect, deps=deps)


def test_run_jobs_resumes_and_reruns_what_changed(tmp_path):
    write = "import json; json.dump(dict(v={v}), open('WD/out.json', 'w'))"
    jobs = [_py_job(tmp_path, 'a', write.format(v=1)),
            _py_job(tmp_path, 'b', write.format(v=2), deps=('a', ))]
    logs = str(tmp_path / 'logs')
    first = run_jobs(jobs, sys.prefix, logs, workers=2, say=lambda m: None)
    assert (first['a']['v'], first['b']['v']) == (1, 2)
    assert not first['a']['_reused']
    again = run_jobs(jobs, sys.prefix, logs, workers=2, say=lambda m: None)
    assert again['a']['_reused'] and again['b']['_reused']
    # changing a reruns a and, through its stamp, b
    jobs[0] = _py_job(tmp_path, 'a', write.format(v=5))
    third = run_jobs(jobs, sys.prefix, logs, workers=1, say=lambda m: None)
    assert third['a']['v'] == 5 and not third['a']['_reused'] and not third['b']['_reused']
    # a job whose stamp leaves out a dep is reused when only that dep changed
    jobs.append(_py_job(tmp_path, 'e', write.format(v=7), deps=('a', 'b')))
    jobs[2].stamp_deps = ('b', )
    fourth = run_jobs(jobs, sys.prefix, logs, workers=1, say=lambda m: None)
    assert fourth['e']['v'] == 7 and not fourth['e']['_reused']
    jobs[0] = _py_job(tmp_path, 'a', write.format(v=6))  # reruns a and b (b's deps changed)
    fifth = run_jobs(jobs, sys.prefix, logs, workers=1, say=lambda m: None)
    assert not fifth['b']['_reused'] and not fifth['e']['_reused']  # b's stamp is in e's
    jobs[1] = Job('b', jobs[1].work_dir, jobs[1].command, jobs[1].collect, deps=('a', ),
                  stamp_deps=())  # b no longer stamps a
    run_jobs(jobs, sys.prefix, logs, workers=1, say=lambda m: None)
    jobs[0] = _py_job(tmp_path, 'a', write.format(v=8))
    sixth = run_jobs(jobs, sys.prefix, logs, workers=1, say=lambda m: None)
    assert not sixth['a']['_reused'] and sixth['b']['_reused'] and sixth['e']['_reused']
    with pytest.raises(ValueError, match='stamp_deps'):
        Job('f', str(tmp_path / 'f'), lambda d: [], lambda j, d: {}, deps=('a', ),
            stamp_deps=('b', ))
    failing = [_py_job(tmp_path, 'c', 'raise SystemExit(3)')]
    with pytest.raises(JobFailed, match='c failed'):
        run_jobs(failing, sys.prefix, logs, say=lambda m: None)
    with pytest.raises(ValueError, match='unknown'):
        run_jobs([_py_job(tmp_path, 'd', '', deps=('zz', ))], sys.prefix, logs)


def _fn_job(name, fn, deps=(), priority=0):
    """A job that runs ``fn(context)`` in the runner's thread (no subprocess)."""
    return Job(name, '', run=fn, deps=deps, priority=priority)


def test_slots_bound_concurrency_and_ready_jobs_start_in_list_order(tmp_path):
    lock, running, peak, started, slots = threading.Lock(), [0], [0], [], set()

    def job(i):
        def run(ctx):
            with lock:
                running[0] += 1
                peak[0] = max(peak[0], running[0])
                started.append(i)
                slots.add(ctx.slot)
            time.sleep(0.05)
            with lock:
                running[0] -= 1
            return i * i
        return _fn_job(f'j{i}', run)
    logs = str(tmp_path / 'logs')
    out = run_jobs([job(i) for i in range(5)], str(tmp_path), logs, workers=2, say=lambda m: None)
    assert [out[f'j{i}'] for i in range(5)] == [0, 1, 4, 9, 16]
    assert peak[0] == 2 and sorted(started[:2]) == [0, 1] and slots == {0, 1}
    peak[0] = 0
    run_jobs([job(i) for i in range(4)], str(tmp_path), logs, workers=4, say=lambda m: None)
    assert peak[0] == 4
    # a dependency waits; priority orders the ready ones
    order = []
    jobs = [_fn_job('late', lambda c: order.append('late'), deps=('first', )),
            _fn_job('low', lambda c: order.append('low')),
            _fn_job('first', lambda c: order.append('first'), priority=1)]
    run_jobs(jobs, str(tmp_path), logs, workers=1, say=lambda m: None)
    assert order == ['first', 'late', 'low']  # then list order among the ready ones


def test_the_stamp_covers_the_config_and_its_base_files(tmp_path):
    """Editing the base a config inherits changes the stamp of a command naming that config,
    so the finished run is not reused."""
    (tmp_path / 'base.py').write_text('model = dict(width=16)\n')
    (tmp_path / 'kd.py').write_text("_base_ = './base.py'\nmodel = dict(kd=True)\n")
    cfg = str(tmp_path / 'kd.py')
    first = job_stamp(['tools/train.py', cfg, '--cfg-options', 'a=1'], [], str(tmp_path))
    assert job_stamp(['tools/train.py', cfg, '--cfg-options', 'a=1'], [], str(tmp_path)) == first
    assert job_stamp(['tools/train.py', cfg, '--cfg-options', 'a=2'], [], str(tmp_path)) != first
    assert job_stamp(['tools/train.py', 'kd.py', '--cfg-options', 'a=1'], ['x'],
                     str(tmp_path)) != first
    (tmp_path / 'base.py').write_text('model = dict(width=32)\n')
    assert job_stamp(['tools/train.py', cfg, '--cfg-options', 'a=1'], [], str(tmp_path)) != first
    # through a key=value argument too (a teacher config)
    before = job_stamp(['t.py', f'model.teacher_config={cfg}'], [], str(tmp_path))
    (tmp_path / 'base.py').write_text('model = dict(width=8)\n')
    assert job_stamp(['t.py', f'model.teacher_config={cfg}'], [], str(tmp_path)) != before


def test_failures_are_listed_and_nothing_new_starts_after_one(tmp_path):
    logs = str(tmp_path / 'logs')
    ran = []
    jobs = [_py_job(tmp_path, 'bad1', 'raise SystemExit(2)'),
            _py_job(tmp_path, 'bad2', 'import sys; print("oops"); sys.exit(5)'),
            _fn_job('after', lambda c: ran.append(1), deps=('bad1', ))]
    with pytest.raises(JobFailed) as info:
        run_jobs(jobs, sys.prefix, logs, workers=2, say=lambda m: None)
    assert set(info.value.failures) == {'bad1', 'bad2'} and ran == []
    assert 'bad1, bad2' in str(info.value) or 'bad2, bad1' in str(info.value)
    assert 'exit 5' in info.value.failures['bad2'] and 'oops' in info.value.failures['bad2']
    assert osp.join(logs, 'bad2.log') in info.value.failures['bad2']


def test_progress_and_echoed_lines(tmp_path):
    said = []
    wd = str(tmp_path / 'p')
    job = Job('p', wd, lambda d: ['-c', 'print("keep 1"); print("drop"); print("keep 2")'],
              lambda j, d: {}, echo=lambda line: line.strip() if 'keep' in line else None)
    run_jobs([job, _fn_job('q', lambda c: None)], sys.prefix, str(tmp_path / 'logs'),
             workers=1, say=said.append, progress='demo')
    assert '[p]   keep 1' in said and '[p]   keep 2' in said
    assert not any(m.startswith('[p]   ') and 'drop' in m for m in said)
    assert any(m.startswith('demo: 2/2 (100%), elapsed ') and 'ETA 0:00:00' in m for m in said)
    with open(osp.join(str(tmp_path / 'logs'), 'p.log')) as f:
        assert f.read().splitlines()[1:] == ['keep 1', 'drop', 'keep 2']
    with open(osp.join(wd, 'job_result.json')) as f:
        assert json.load(f)['_reused'] is False
