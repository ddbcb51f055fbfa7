"""Benchmark a set of configs: plan, run (resuming), collect, release, publish.

    # the commands every run and its evaluation will execute (a dry run)
    python tools/benchmark.py plan configs/gfl configs/retinanet --launcher slurm --partition P
    # execute them; finished runs are skipped, interrupted ones resume; rerun after any stop
    python tools/benchmark.py run configs/gfl configs/retinanet --launcher slurm --partition P \\
        --seeds 0 1 2 --jobs 8
    # every work dir into one results.json (same configs, --work-root, --seeds, --cfg-options)
    python tools/benchmark.py collect configs/gfl configs/retinanet --seeds 0 1 2 \\
        --out work_dirs/benchmark/results.json
    # release the checkpoints (student weights only, sha256 in the name), then the README tables
    python tools/benchmark.py release --results work_dirs/benchmark/results.json \\
        --out-dir work_dirs/benchmark/release --link-prefix https://example.org/mmkdcal/
    python tools/benchmark.py publish --results work_dirs/benchmark/results.json

CONFIGS are folders (every *.py in them), globs, config files, or list files (one config per
line, optionally followed by key=value options for that config alone). Details:
docs/benchmark.md.
"""
import argparse
import json
import os.path as osp
import shlex
import sys

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)

from tools.harness.matrix.plan import (Launcher, discover_configs, in_root, make_plan,  # noqa: E402
                                       root_relative, test_command, train_command)

DEFAULT_WORK_ROOT = 'work_dirs/benchmark'


def _plan_args(p: argparse.ArgumentParser, seeds_default=(0,)) -> None:
    p.add_argument('configs', nargs='+',
                   help='folders, globs, config files or list files ("CONFIG [key=value ...]" '
                        'per line)')
    p.add_argument('--work-root', default=DEFAULT_WORK_ROOT,
                   help='parent of the work dirs <work-root>/<config name>/seed<N> '
                        f'(default {DEFAULT_WORK_ROOT})')
    p.add_argument('--seeds', type=int, nargs='+', default=seeds_default,
                   help='randomness.seed of each repeat (default: 0)' if seeds_default else
                   'seeds to read (default: every seed<N> work dir found)')
    p.add_argument('--cfg-options', nargs='+', default=[],
                   help='key=value options for every config')


def _launcher_args(p: argparse.ArgumentParser) -> None:
    p.add_argument('--launcher', choices=['python', 'dist', 'slurm'], default='python',
                   help='python: tools/train.py; dist: tools/dist_train.sh CONFIG GPUS; slurm: '
                        'tools/slurm_train.sh PARTITION JOB CONFIG WORK_DIR (default python)')
    p.add_argument('--gpus', type=int, default=8, help='dist/slurm: GPUs per run (default 8)')
    p.add_argument('--gpus-per-node', type=int, default=None,
                   help='slurm: GPUS_PER_NODE (default min(gpus, 8))')
    p.add_argument('--cpus-per-task', type=int, default=5, help='slurm: CPUS_PER_TASK')
    p.add_argument('--partition', default=None, help='slurm: the partition')
    p.add_argument('--srun-args', default='', help='slurm: SRUN_ARGS')
    p.add_argument('--train-args', default='',
                   help='extra tools/train.py arguments, one string (e.g. "--amp")')
    p.add_argument('--test-args', default='', help='extra tools/test.py arguments, one string')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Benchmark a set of configs (mmkdcal)')
    sub = parser.add_subparsers(dest='command', required=True)
    p = sub.add_parser('plan', help='print every command (dry run)')
    _plan_args(p)
    _launcher_args(p)
    p = sub.add_parser('run', help='execute the plan (resumes; failures do not stop the rest)')
    _plan_args(p)
    _launcher_args(p)
    p.add_argument('--jobs', type=int, default=1, help='runs at the same time (default 1)')
    p = sub.add_parser('collect', help='read the work dirs into results.json')
    _plan_args(p, seeds_default=None)
    p.add_argument('--out', default=None,
                   help='results file (default <work-root>/results.json)')
    p = sub.add_parser('release', help='write release checkpoints, record them in results.json')
    p.add_argument('--results', required=True)
    p.add_argument('--out-dir', required=True, help='where the released .pth files go')
    p.add_argument('--link-prefix', default=None,
                   help='URL prefix of the released files in the README (default: a relative '
                        'path to --out-dir)')
    p.add_argument('--metric', default='coco/bbox_mAP',
                   help='with several seeds, the seed closest to the mean of this metric is '
                        'released')
    p.add_argument('--student-config', nargs='+', default=[], metavar='NAME=CONFIG',
                   help='the plain student config of a config name (default: the config\'s '
                        'own model without its teacher)')
    p = sub.add_parser('publish', help="regenerate the README tables' (ours) cells")
    p.add_argument('--results', required=True)
    p.add_argument('--readme', nargs='+', default=None,
                   help='READMEs to update (default: <folder>/README.md of every result)')
    p.add_argument('--metric', default='coco/bbox_mAP', help='the metric shown')
    p.add_argument('--scale', type=float, default=100.0,
                   help='multiplier of the metric (default 100: 0.402 is shown as 40.2)')
    p.add_argument('--decimals', type=int, default=1)
    return parser.parse_args(argv)


def _plan(args, seeds=None):
    entries = discover_configs(args.configs)
    return make_plan(entries, args.work_root, seeds if seeds is not None else args.seeds,
                     args.cfg_options)


def _launcher(args) -> Launcher:
    return Launcher(kind=args.launcher, gpus=args.gpus, gpus_per_node=args.gpus_per_node,
                    cpus_per_task=args.cpus_per_task, partition=args.partition,
                    srun_args=args.srun_args, train_args=shlex.split(args.train_args),
                    test_args=shlex.split(args.test_args))


def cmd_plan(args) -> int:
    from tools.harness.matrix.plan import missing_scripts
    from tools.harness.matrix.state import inspect_run
    launcher = _launcher(args)
    runs = _plan(args)
    n_cfg = len({r.config for r in runs})
    print(f'# {n_cfg} configs x {len(args.seeds)} seed(s) = {len(runs)} runs; launcher '
          f'{launcher.kind}; run from {ROOT}')
    missing = missing_scripts(launcher)
    if missing:
        print(f'# note: {missing} not in this checkout yet; `run` needs them')
    for i, run in enumerate(runs, 1):
        state = inspect_run(run)
        print(f'\n# [{i}/{len(runs)}] {run.key} ({run.config}): {state.stage}, {state.message}')
        if state.stage == 'conflict':
            continue
        if state.stage in ('new', 'partial'):
            resume = root_relative(state.checkpoint) if state.stage == 'partial' else None
            print(train_command(run, launcher, resume).shell())
        ckpt = root_relative(state.checkpoint) if state.stage in ('trained', 'done') else None
        if state.stage == 'done':
            print('# evaluated; skipped by `run`')
        print(test_command(run, launcher, ckpt).shell())
    return 0


def cmd_run(args) -> int:
    from tools.harness.matrix.execute import execute_plan, print_summary
    launcher = _launcher(args)
    runs = _plan(args)
    print(f'== benchmark: {len(runs)} runs, launcher {launcher.kind}, {args.jobs} at a time',
          flush=True)
    outcomes = execute_plan(runs, launcher, jobs=args.jobs,
                            say=lambda m: print(m, flush=True))
    return 0 if print_summary(outcomes, say=lambda m: print(m, flush=True)) else 1


def _found_seeds(args):
    import glob
    import re
    seeds = set()
    for e in discover_configs(args.configs):
        name = osp.splitext(osp.basename(e.path))[0]
        for d in glob.glob(osp.join(in_root(args.work_root), name, 'seed*')):
            m = re.fullmatch(r'seed(\d+)', osp.basename(d))
            if m:
                seeds.add(int(m.group(1)))
    return sorted(seeds) or [0]


def cmd_collect(args) -> int:
    from tools.harness.matrix.collect import collect_results, write_results
    runs = _plan(args, seeds=args.seeds or _found_seeds(args))
    results = collect_results(runs)
    out = args.out or osp.join(args.work_root, 'results.json')
    write_results(results, out)
    for r in results['runs']:
        m = (r['metrics'] or {}).get('coco/bbox_mAP')
        print(f'{r["name"]} seed {r["seed"]}: {r["status"]}'
              + (f', bbox_mAP {m}' if m is not None else '') + f' ({r["state"]})')
    n = sum(r['status'] == 'complete' for r in results['runs'])
    print(f'{n}/{len(results["runs"])} runs complete -> {out}')
    return 0


def _closest_seed(entry, metric):
    stats = entry['metrics'].get(metric)
    if stats is None:
        return entry['seeds'][0]
    pairs = sorted(zip(entry['seeds'], stats['values']),
                   key=lambda sv: (abs(sv[1] - stats['mean']), sv[0]))
    return pairs[0][0]


def cmd_release(args) -> int:
    from tools.harness.matrix.release import plain_student_keys, release_checkpoint
    with open(args.results) as f:
        results = json.load(f)
    students = {}
    for item in args.student_config:
        if '=' not in item:
            raise SystemExit(f'--student-config expects NAME=CONFIG, got {item!r}')
        k, v = item.split('=', 1)
        students[k] = v
    releases = results.setdefault('releases', {})
    for name, entry in results['summary'].items():
        seed = _closest_seed(entry, args.metric)
        run = next(r for r in results['runs'] if r['name'] == name and r['seed'] == seed)
        keys = plain_student_keys(run['config'], run['cfg_options'], students.get(name))
        info = release_checkpoint(in_root(run['checkpoint']), args.out_dir, f'{name}_seed{seed}',
                                  student_keys=keys)
        base = osp.basename(info['file'])
        link = args.link_prefix.rstrip('/') + '/' + base if args.link_prefix else None
        releases[name] = dict(file=root_relative(info['file']), sha256=info['sha256'],
                              link=link, seed=seed, source=run['checkpoint'],
                              dropped_keys=info['dropped_keys'],
                              dropped_entries=info['dropped_entries'])
        print(f'{name}: {run["checkpoint"]} -> {info["file"]} (sha256 {info["sha256"][:8]}; '
              f'dropped {len(info["dropped_keys"])} weights and {info["dropped_entries"]})')
    with open(args.results, 'w') as f:
        json.dump(results, f, indent=2)
    return 0


def cmd_publish(args) -> int:
    from tools.harness.matrix.tables import TableError, publish_readme
    with open(args.results) as f:
        results = json.load(f)
    summary, releases = results['summary'], results.get('releases', {})
    readmes = args.readme or sorted({osp.join(in_root(e['folder']), 'README.md')
                                     for e in summary.values()})
    covered, failed = set(), []
    for path in readmes:
        if not osp.isfile(path):
            print(f'{path}: no such README, skipped')
            continue
        with open(path) as f:
            text = f.read()
        try:
            new, changed, rows = publish_readme(
                text, summary, releases, readme_dir=osp.dirname(osp.abspath(path)),
                metric=args.metric, scale=args.scale, decimals=args.decimals)
        except TableError as exc:  # the other READMEs are still published
            print(f'{path}: not published: {exc}')
            failed.append(path)
            continue
        covered.update(rows)
        if new != text:
            with open(path, 'w') as f:
                f.write(new)
        print(f'{path}: {len(changed)} rows regenerated' + (f' ({", ".join(changed)})'
                                                            if changed else ''))
    left = sorted(set(summary) - covered)
    if left:
        print(f'no README row for: {", ".join(left)}')
    return 1 if failed else 0


def main(argv=None) -> int:
    args = parse_args(argv)
    command = dict(plan=cmd_plan, run=cmd_run, collect=cmd_collect, release=cmd_release,
                   publish=cmd_publish)[args.command]
    try:
        return command(args)
    except (FileNotFoundError, KeyError, ValueError) as exc:  # bad input: say why, no traceback
        print(f'tools/benchmark.py {args.command}: error: {exc}', file=sys.stderr)
        return 2


if __name__ == '__main__':
    sys.exit(main())
