"""The detection study's job graph (no training): dependencies, the teacher temperature each KD
student gets, and which teachers get the ACE/ECE students (the runner: tests/tools/harness)."""
from projects.teacher_studies.studies import detection_teacher_study as dts


def _fake_deps(cfg, work):
    """Results as the teacher and measure jobs would return them; D-ECE grows with the index."""
    deps = {}
    for i, t in enumerate(cfg.teachers):
        deps[f'teacher_{t.name}'] = dict(checkpoint=f'{work}/{t.name}.pth',
                                         config=f'{work}/{t.name}.py', _stamp=f'st{i}')
        deps[f'measure_{t.name}'] = dict(
            temperatures=dict(nll=0.5 + i, ace=0.6 + i, ece=0.7 + i), _stamp=f'sm{i}',
            splits=dict(calib=dict(before=dict(dece=0.01 * (i + 1)))))
    return deps


def test_job_graph_temperatures_and_objective_teachers(tmp_path):
    cfg = dts.study_config('full')
    assert len(cfg.teachers) >= 8
    assert {t.family for t in cfg.teachers} == {'gfl', 'retinanet'}
    jobs = {j.name: j for j in dts.build_jobs(cfg, str(tmp_path), str(tmp_path / 'data'))}
    n_t, n_s = len(cfg.teachers), len(cfg.seeds)
    # teacher + measure per teacher, no-KD per family and seed, raw/nll/ace/ece and
    # class_temperature/platt/isotonic/auto per teacher+seed; no long arm without long_iters
    assert len(jobs) == 2 * n_t + 2 * n_s + 8 * n_t * n_s
    assert not any(n.startswith('long_') for n in jobs)
    deps = _fake_deps(cfg, tmp_path)
    top = [t.name for t in cfg.teachers][::-1][:cfg.objective_teachers]  # largest D-ECE last
    for t in cfg.teachers:
        raw = jobs[f'kd_{t.name}_s1_raw']
        assert raw.deps == (f'teacher_{t.name}', )
        argv = raw.command({d: deps[d] for d in raw.deps})
        assert 'model.teacher_temperature=1.0' in argv
        assert f'model.teacher_ckpt={tmp_path}/{t.name}.pth' in argv
        assert 'randomness.seed=1' in argv
        assert argv[1] == dts.FAMILIES[t.family]['kd']
        nll = jobs[f'kd_{t.name}_s1_nll']
        i = [x.name for x in cfg.teachers].index(t.name)
        argv = nll.command({d: deps[d] for d in nll.deps})
        assert f'model.teacher_temperature={0.5 + i!r}' in argv
        ace = jobs[f'kd_{t.name}_s0_ace']
        assert set(ace.deps) >= {f'measure_{x.name}' for x in cfg.teachers}
        # ... but only its own teacher's jobs enter its stamp: adding a teacher reruns nothing
        assert ace.stamp_deps == (f'teacher_{t.name}', f'measure_{t.name}')
        argv = ace.command({d: deps[d] for d in ace.deps})
        if t.name in top:
            assert f'model.teacher_temperature={0.6 + i!r}' in argv
        else:
            assert argv is None  # skipped: not among the most miscalibrated
    # every student of one family trains the same config for the same number of iterations
    schedule = [a for a in jobs['student_gfl_s0'].command({}) if a.startswith('train_cfg.')]
    for name in ('kd_gfl_r18w32_s0_raw', 'kd_retina_r18w32_s2_nll'):
        j = jobs[name]
        assert [a for a in j.command({d: deps[d] for d in j.deps})
                if a.startswith('train_cfg.')] == schedule
    # an early-stopped teacher keeps the full learning-rate schedule
    stop = next(t for t in cfg.teachers if t.stop is not None)
    argv = jobs[f'teacher_{stop.name}'].command({})
    iters, run = dts.teacher_iterations(cfg, stop)
    assert run < iters and f'train_cfg.max_iters={run}' in argv
    assert f'param_scheduler.1.end={iters}' in argv


def test_stamp_deps_name_only_the_students_own_teacher(tmp_path):
    """A teacher whose name ends another's (``r18w32`` vs ``gfl_r18w32``) stamps only its own
    jobs, not the other's measurement."""
    cfg = dts.study_config('full')
    cfg.teachers.append(dts.DetTeacher('r18w32', 'gfl', dts.GFL_W32, 'suffix of gfl_r18w32'))
    jobs = {j.name: j for j in dts.build_jobs(cfg, str(tmp_path), str(tmp_path / 'data'))}
    assert 'measure_gfl_r18w32' in jobs['kd_r18w32_s0_ace'].deps
    for variant, want in (('raw', ('teacher_r18w32', )),
                          ('nll', ('teacher_r18w32', 'measure_r18w32')),
                          ('ace', ('teacher_r18w32', 'measure_r18w32'))):
        assert jobs[f'kd_r18w32_s0_{variant}'].stamp_deps == want
