"""projects/hetero_evidence/run.py: the jobs it plans (which config, which teacher, which seed,
the calibration hook only where asked) and the table it writes, on planted job results (the runs
themselves are the project's own tools; every config trains one step in tests/configs)."""
import importlib.util
import json
import os.path as osp

from _helpers import ROOT

_spec = importlib.util.spec_from_file_location(
    'hetero_evidence_run', osp.join(ROOT, 'projects', 'hetero_evidence', 'run.py'))
run = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(run)

PAIRS = ('retinanet<-gfl', 'gfl<-cascade', 'faster<-cascade', 'faster<-gfl')
ARMS = ('no KD', 'feature KD (PKD)', 'pred KD, raw teacher', 'pred KD, calibrated teacher')
#: Planted teacher checkpoints, the results of the teachers' training jobs.
TEACHER_CKPTS = {'teacher_gfl_train': dict(checkpoint='/w/teacher_gfl/iter_400.pth'),
                 'teacher_cascade_train': dict(checkpoint='/w/teacher_cascade/iter_400.pth')}


def _opts(argv):
    return dict(o.split('=', 1) for o in argv[argv.index('--cfg-options') + 1:])


def test_the_plan_trains_each_arm_from_its_teacher_with_its_seed():
    jobs, runs = run.build_jobs(run.MODES['default'], '/w', '/data', seeds=[0, 1])
    by_name = {j.name: j for j in jobs}
    assert len(jobs) == 2 * 2 + 4 * 4 * 2 * 2  # teachers: train + test; students likewise
    assert sorted((r['pair'], r['arm'], r['seed']) for r in runs) == sorted(
        (p, a, s) for p in PAIRS for a in ARMS for s in (0, 1))
    teacher_of = {'retinanet<-gfl': 'gfl', 'gfl<-cascade': 'cascade', 'faster<-cascade': 'cascade',
                  'faster<-gfl': 'gfl'}
    prefix = {'feature KD (PKD)': 'pkd_', 'pred KD, raw teacher': 'pred_',
              'pred KD, calibrated teacher': 'pred-cal_'}
    for r in runs:
        job = by_name[f'{r["tag"]}_train']
        argv = job.command(TEACHER_CKPTS)
        opts = _opts(argv)
        cfg = osp.basename(argv[1])
        assert opts['randomness.seed'] == str(r['seed'])
        assert opts['train_cfg.max_iters'] == '400'
        teacher = teacher_of[r['pair']]
        assert tuple(job.deps) == (f'teacher_{teacher}_train', )
        if r['arm'] == 'no KD':
            assert not cfg.startswith(('pkd_', 'pred')) and 'model.teacher_ckpt' not in opts
            assert tuple(job.stamp_deps) == ()  # a retrained teacher does not rerun it
            continue
        assert cfg.startswith(prefix[r['arm']]), (r['arm'], cfg)
        assert opts['model.teacher_ckpt'] == f'/w/teacher_{teacher}/iter_400.pth'
        assert osp.dirname(opts['model.teacher_config']) == f'/w/teacher_{teacher}'
        calibrated = r['arm'] == 'pred KD, calibrated teacher'
        assert r['cal'] == calibrated
        assert ('custom_hooks.0.dataloader.dataset.data_root' in opts) == calibrated
        if calibrated:
            assert opts['custom_hooks.0.dataloader.dataset.data_root'] == '/data/'


def test_the_table_holds_each_run_and_the_fitted_temperature(tmp_path):
    jobs, runs = run.build_jobs(run.MODES['default'], str(tmp_path), '/data', seeds=[0])
    done = {}
    for i, key in enumerate(('gfl', 'cascade')):
        done[f'teacher_{key}_train'] = dict(_reused=False, _wall_s=600.0)
        done[f'teacher_{key}_test'] = dict(metrics={'coco/bbox_mAP': 0.6 + i / 10,
                                                    'coco/bbox_mAP_50': 0.8}, _wall_s=30.0)
    for i, r in enumerate(runs):
        done[f'{r["tag"]}_train'] = dict(_reused=i == 0, _wall_s=120.0)
        done[f'{r["tag"]}_test'] = dict(metrics={'coco/bbox_mAP': i / 100,
                                                 'coco/bbox_mAP_50': 0.5}, _wall_s=6.0)
        if r['cal']:  # what TeacherCalibrationHook writes into the run's work dir
            (tmp_path / r['tag']).mkdir()
            with open(tmp_path / r['tag'] / 'teacher_calibration.json', 'w') as f:
                json.dump(dict(temperature=0.25 + i / 100), f)
    rows = run.collect(done, runs)
    md = run.report(rows, 'default', run.MODES['default'], [0], 1800.0, 'planted machine',
                    str(tmp_path))
    lines = [ln for ln in md.splitlines() if ln.startswith('| ') and '---' not in ln][1:]
    assert lines[:2] == [
        '| teacher | GFL r18w32 | 0 | 0.6000 | 0.8000 | - | 10.0 + 0.5 |',
        '| teacher | Cascade R-CNN r18w32 | 0 | 0.7000 | 0.8000 | - | 10.0 + 0.5 |']
    expected = []
    for i, r in enumerate(runs):
        t = f'{0.25 + i / 100:.3f}' if r['cal'] else '-'
        train = 'reused' if i == 0 else '2.0'
        expected.append(f'| {r["pair"]} | {r["arm"]} | 0 | {i / 100:.4f} | 0.5000 | {t} | '
                        f'{train} + 0.1 |')
    assert lines[2:] == expected and len(expected) == 16
    assert sum(r['cal'] for r in runs) == 4
    assert 'Machine: planted machine. Wall time of this run: 30.0 min' in md
    with open(tmp_path / 'results.json') as f:
        saved = json.load(f)
    assert saved['rows'] == rows and saved['machine'] == 'planted machine'
    assert (tmp_path / 'results.md').read_text() == md


def test_an_extra_pkd_weight_is_one_more_arm_with_only_that_override():
    _, base = run.build_jobs(run.MODES['default'], '/w', '/data', seeds=[0])
    jobs, runs = run.build_jobs(run.MODES['default'], '/w', '/data', seeds=[0], pkd_weights=[1.0])
    by_name = {j.name: j for j in jobs}
    extra = [r for r in runs if r['arm'] == 'feature KD (PKD, weight 1)']
    assert len(runs) == len(base) + len(PAIRS) and [r['pair'] for r in extra] == list(PAIRS)
    for r in extra:
        assert r['tag'].endswith('_pkd-w1_seed0') and not r['cal']
        argv = by_name[f'{r["tag"]}_train'].command(TEACHER_CKPTS)
        default = by_name[r['tag'].replace('pkd-w1', 'pkd') + '_train'].command(TEACHER_CKPTS)
        assert argv[1] == default[1] and osp.basename(argv[1]).startswith('pkd_')
        assert _opts(argv) == dict(_opts(default), **{
            'model.distill_losses.loss_pkd.loss_weight': '1.0'})
        assert argv[argv.index('--work-dir') + 1] == f'/w/{r["tag"]}'
