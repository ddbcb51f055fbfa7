"""The benchmark plan: which configs, which seeds, which work dirs, which commands.

A plan is a list of :class:`Run` (one config, one seed, one work dir). Each run has a training
command and an evaluation command for the chosen :class:`Launcher`:

- ``python``: ``python tools/train.py CONFIG --work-dir W ...`` (one process, CPU or one GPU);
- ``dist``: ``bash tools/dist_train.sh CONFIG GPUS ...`` (one node, ``GPUS`` processes);
- ``slurm``: ``GPUS=.. GPUS_PER_NODE=.. CPUS_PER_TASK=.. bash tools/slurm_train.sh PARTITION
  JOB_NAME CONFIG WORK_DIR ...`` (MMDetection's Slurm interface; the evaluation uses
  ``tools/slurm_test.sh PARTITION JOB_NAME CONFIG CHECKPOINT ...``).

Every command is meant to be run from the repository root.
"""
import argparse
import copy
import glob
import os.path as osp
import shlex
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Optional, Sequence

__all__ = ['Command', 'ConfigEntry', 'LAUNCHERS', 'Launcher', 'METRICS_FILE', 'ROOT', 'Run',
           'discover_configs', 'in_root', 'launcher_scripts', 'make_plan', 'missing_scripts',
           'parse_cfg_options', 'root_relative', 'test_command', 'train_command']

#: The checkout the benchmark runs in (its tools/*.py run the commands).
ROOT = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
LAUNCHERS = ('python', 'dist', 'slurm')
#: The evaluation metrics of a run, written by ``tools/test.py --metrics-out``.
METRICS_FILE = 'test_metrics.json'
_GLOB_CHARS = set('*?[')


@dataclass
class ConfigEntry:
    """One config of the set, with the ``--cfg-options`` given for it alone (list files)."""

    path: str
    options: List[str] = field(default_factory=list)


@dataclass
class Launcher:
    """How the commands start: plain ``python``, local ``dist`` or ``slurm``.

    Args:
        kind: ``'python'``, ``'dist'`` or ``'slurm'``.
        gpus: Processes (GPUs) per run for ``dist`` and ``slurm``.
        gpus_per_node: ``slurm``: GPUs per node (default ``min(gpus, 8)``).
        cpus_per_task: ``slurm``: CPUs per task.
        partition: ``slurm``: the partition (required).
        srun_args: ``slurm``: extra ``srun`` arguments (``SRUN_ARGS``).
        train_args: Extra arguments of ``tools/train.py`` (e.g. ``--amp``, ``--auto-scale-lr``).
        test_args: Extra arguments of ``tools/test.py``.
    """

    kind: str = 'python'
    gpus: int = 8
    gpus_per_node: Optional[int] = None
    cpus_per_task: int = 5
    partition: Optional[str] = None
    srun_args: str = ''
    train_args: List[str] = field(default_factory=list)
    test_args: List[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.kind not in LAUNCHERS:
            raise ValueError(f'launcher must be one of {LAUNCHERS}, got {self.kind!r}.')
        if self.kind in ('dist', 'slurm') and (not isinstance(self.gpus, int) or self.gpus < 1):
            raise ValueError(f'--gpus must be a positive integer, got {self.gpus!r}.')
        if self.kind == 'slurm' and not self.partition:
            raise ValueError('--launcher slurm needs --partition PARTITION.')
        for flag in ('--work-dir', '--cfg-options', '--resume', '--launcher', '--metrics-out'):
            for args in (self.train_args, self.test_args):
                if any(a == flag or a.startswith(flag + '=') for a in args):
                    raise ValueError(f'{flag} is set by the benchmark itself; remove it from '
                                     '--train-args/--test-args (per-config options go in a list '
                                     'file, global ones in --cfg-options).')

    @property
    def slurm_env(self) -> Dict[str, str]:
        env = dict(GPUS=str(self.gpus),
                   GPUS_PER_NODE=str(self.gpus_per_node or min(self.gpus, 8)),
                   CPUS_PER_TASK=str(self.cpus_per_task))
        if self.srun_args:
            env['SRUN_ARGS'] = self.srun_args
        return env


@dataclass
class Command:
    """A command line: ``argv`` plus the environment variables it sets."""

    argv: List[str]
    env: Dict[str, str] = field(default_factory=dict)

    def shell(self) -> str:
        """The command as one shell line (``VAR=value ... argv``)."""
        prefix = ' '.join(f'{k}={shlex.quote(v)}' for k, v in self.env.items())
        return (prefix + ' ' if prefix else '') + shlex.join(self.argv)


@dataclass
class Run:
    """One training run of the plan (a config and a seed) and what is known of it in advance.

    Args:
        config: Config path (relative to the repository root when inside it).
        seed: ``randomness.seed`` of the run.
        work_dir: Its own work dir, ``<work root>/<config name>/seed<seed>``.
        cfg_options: Every ``--cfg-options`` item of its commands (global, per config, seed).
        by_epoch: Whether the training loop counts epochs (else iterations).
        max_steps: ``max_epochs`` or ``max_iters``.
        checkpoint_name: File name of the final checkpoint, when the checkpoint hook's naming
            makes it known in advance (else None).
        teacher_temperature: ``model.teacher_temperature`` of the config (None if fitted or not
            a distiller).
        is_distiller: Whether the model has a teacher.
    """

    config: str
    seed: int
    work_dir: str
    cfg_options: List[str]
    by_epoch: bool
    max_steps: int
    checkpoint_name: Optional[str]
    teacher_temperature: Any = None
    is_distiller: bool = False

    @property
    def name(self) -> str:
        return osp.splitext(osp.basename(self.config))[0]

    @property
    def folder(self) -> str:
        return osp.dirname(self.config)

    @property
    def key(self) -> str:
        return f'{self.name} seed {self.seed}'

    @property
    def job_name(self) -> str:
        return f'{self.name}_seed{self.seed}'

    @property
    def metrics_file(self) -> str:
        return osp.join(self.work_dir, METRICS_FILE)

    @property
    def final_checkpoint(self) -> Optional[str]:
        return osp.join(self.work_dir, self.checkpoint_name) if self.checkpoint_name else None


def in_root(path: str) -> str:
    """A path of the plan (relative to the repository root, or absolute) as an absolute path."""
    return path if osp.isabs(path) else osp.join(ROOT, path)


def root_relative(path: str) -> str:
    """``path`` relative to the repository root when inside it, else absolute."""
    path = osp.abspath(path)
    rel = osp.relpath(path, ROOT)
    return path if rel.startswith('..') else rel


def _read_list_file(path: str) -> List[ConfigEntry]:
    entries = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.split('#', 1)[0].strip()
            if not line:
                continue
            words = shlex.split(line)
            config, options = words[0], words[1:]
            bad = [o for o in options if '=' not in o]
            if bad:
                raise ValueError(f'{path}:{n}: {bad[0]!r} is not key=value; a list file line is '
                                 '"CONFIG [key=value ...]" (the options of that config alone).')
            if not osp.isfile(config):
                raise FileNotFoundError(f'{path}:{n}: config {config!r} does not exist (paths '
                                        'are relative to the directory you run from).')
            entries.append(ConfigEntry(config, options))
    if not entries:
        raise ValueError(f'list file {path!r} names no config.')
    return entries


def discover_configs(specs: Sequence[str]) -> List[ConfigEntry]:
    """The configs named by folders, globs, ``.py`` files and list files.

    A folder means every ``*.py`` directly in it (not ``_base_``); a glob its ``*.py`` matches;
    any other file is a list file: one config per line, optionally followed by ``key=value``
    options for that config alone (``#`` starts a comment).

    Args:
        specs: Folders, globs, config files or list files.

    Returns:
        The configs in the given order (sorted within a folder or glob), without duplicates.

    Raises:
        ValueError: A spec matches nothing, or two configs share a file name (their work dirs
            would collide).
    """
    entries: List[ConfigEntry] = []
    for spec in specs:
        if osp.isdir(spec):
            found = sorted(p for p in glob.glob(osp.join(spec, '*.py'))
                           if not osp.basename(p).startswith('_'))
            if not found:
                raise ValueError(f'folder {spec!r} holds no config (*.py).')
            entries += [ConfigEntry(p) for p in found]
        elif _GLOB_CHARS & set(spec):
            found = sorted(p for p in glob.glob(spec, recursive=True) if p.endswith('.py'))
            if not found:
                raise ValueError(f'glob {spec!r} matches no config (*.py).')
            entries += [ConfigEntry(p) for p in found]
        elif spec.endswith('.py'):
            if not osp.isfile(spec):
                raise FileNotFoundError(f'config {spec!r} does not exist.')
            entries.append(ConfigEntry(spec))
        elif osp.isfile(spec):
            entries += _read_list_file(spec)
        else:
            raise FileNotFoundError(f'{spec!r} is neither a folder, a glob, a config nor a list '
                                    'file.')
    seen: Dict[str, str] = {}
    unique = []
    for e in entries:
        e = ConfigEntry(root_relative(e.path), e.options)
        name = osp.splitext(osp.basename(e.path))[0]
        if name in seen:
            if seen[name] == e.path:
                continue
            raise ValueError(f'two configs are named {name!r} ({seen[name]}, {e.path}); their '
                             'work dirs would collide. Benchmark them in separate --work-root.')
        seen[name] = e.path
        unique.append(e)
    return unique


def parse_cfg_options(options: Sequence[str]) -> Dict[str, Any]:
    """``key=value`` strings parsed exactly as ``tools/train.py --cfg-options`` parses them."""
    if not options:
        return {}
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args(['--cfg-options', *options]).cfg_options


def _schedule(cfg, path: str):
    train_cfg = cfg.get('train_cfg', None) or {}
    if 'max_epochs' in train_cfg:
        by_epoch, max_steps = True, int(train_cfg['max_epochs'])
    elif 'max_iters' in train_cfg:
        by_epoch, max_steps = False, int(train_cfg['max_iters'])
    else:
        raise ValueError(f'{path}: train_cfg has neither max_epochs nor max_iters, so the '
                         'benchmark cannot tell when a run has finished.')
    hook = (cfg.get('default_hooks', None) or {}).get('checkpoint', None) or {}
    hook_by_epoch = hook.get('by_epoch', True)
    name = None
    if hook_by_epoch == by_epoch and hook.get('out_dir', None) is None:
        tmpl = hook.get('filename_tmpl', None) or ('epoch_{}.pth' if by_epoch else 'iter_{}.pth')
        name = tmpl.format(max_steps)
    return by_epoch, max_steps, name


@contextmanager
def _memoized_metafiles() -> Iterator[None]:
    """Read each ``metafile.yml`` once while loading configs.

    MMEngine resolves every ``mmdet::`` config name by parsing all of MMDetection's ~100
    ``metafile.yml`` files again (about a second per reference with the pure-Python YAML
    reader); the files do not change while a plan is made.
    """
    from mmengine.config import utils as cfg_utils
    original = cfg_utils.load
    memo: Dict[str, Any] = {}

    def load(path, *args, **kwargs):
        if isinstance(path, str) and path.endswith(('.yml', '.yaml')) and not args \
                and not kwargs:
            if path not in memo:
                memo[path] = original(path)
            return copy.deepcopy(memo[path])
        return original(path, *args, **kwargs)

    cfg_utils.load = load
    try:
        yield
    finally:
        cfg_utils.load = original


def make_plan(entries: Sequence[ConfigEntry], work_root: str, seeds: Sequence[int] = (0,),
              cfg_options: Sequence[str] = ()) -> List[Run]:
    """One :class:`Run` per config and seed, after reading each config with its options.

    Args:
        entries: From :func:`discover_configs`.
        work_root: Parent of the work dirs (``<work_root>/<config name>/seed<seed>``).
        seeds: ``randomness.seed`` values; each config runs once per seed.
        cfg_options: ``key=value`` options for every config (before its own and the seed).

    Returns:
        The runs, config by config, seeds in the given order.
    """
    from mmengine.config import Config
    if not seeds:
        raise ValueError('--seeds needs at least one seed.')
    if len(set(seeds)) != len(seeds):
        raise ValueError(f'--seeds has duplicates: {list(seeds)}.')
    runs = []
    with _memoized_metafiles():
        configs = [Config.fromfile(in_root(e.path), import_custom_modules=False) for e in entries]
    for e, cfg in zip(entries, configs):
        options = list(cfg_options) + list(e.options)
        try:
            cfg.merge_from_dict(parse_cfg_options(options))
        except Exception as exc:
            raise ValueError(f'{e.path}: the options {options} do not apply: {exc}') from exc
        by_epoch, max_steps, ckpt_name = _schedule(cfg, e.path)
        model = cfg.get('model', None) or {}
        is_distiller = 'teacher_config' in model
        name = osp.splitext(osp.basename(e.path))[0]
        for seed in seeds:
            runs.append(Run(
                config=e.path, seed=int(seed),
                work_dir=root_relative(osp.join(work_root, name, f'seed{seed}')),
                cfg_options=options + [f'randomness.seed={seed}'],
                by_epoch=by_epoch, max_steps=max_steps, checkpoint_name=ckpt_name,
                teacher_temperature=model.get('teacher_temperature', None) if is_distiller
                else None,
                is_distiller=is_distiller))
    return runs


def _options_args(run: Run) -> List[str]:
    return ['--cfg-options', *run.cfg_options] if run.cfg_options else []


def train_command(run: Run, launcher: Launcher, resume_from: Optional[str] = None) -> Command:
    """The training command of ``run``; ``resume_from``: continue from that checkpoint."""
    py_args = list(launcher.train_args)
    if resume_from is not None:
        py_args += ['--resume', resume_from]
    py_args += _options_args(run)
    if launcher.kind == 'python':
        return Command(['python', 'tools/train.py', run.config, '--work-dir', run.work_dir,
                        *py_args])
    if launcher.kind == 'dist':
        return Command(['bash', 'tools/dist_train.sh', run.config, str(launcher.gpus),
                        '--work-dir', run.work_dir, *py_args])
    return Command(['bash', 'tools/slurm_train.sh', launcher.partition, run.job_name, run.config,
                    run.work_dir, *py_args], env=launcher.slurm_env)


def test_command(run: Run, launcher: Launcher, checkpoint: Optional[str] = None) -> Command:
    """The evaluation command of ``run``: metrics to ``<work_dir>/test_metrics.json``.

    Args:
        run: The run.
        launcher: The launcher.
        checkpoint: The checkpoint to test (default: the run's final checkpoint).
    """
    checkpoint = checkpoint or run.final_checkpoint or osp.join(run.work_dir, '<last checkpoint>')
    py_args = ['--work-dir', osp.join(run.work_dir, 'test'), '--metrics-out', run.metrics_file,
               *launcher.test_args, *_options_args(run)]
    if launcher.kind == 'python':
        return Command(['python', 'tools/test.py', run.config, checkpoint, *py_args])
    if launcher.kind == 'dist':
        return Command(['bash', 'tools/dist_test.sh', run.config, checkpoint, str(launcher.gpus),
                        *py_args])
    return Command(['bash', 'tools/slurm_test.sh', launcher.partition, run.job_name + '_test',
                    run.config, checkpoint, *py_args], env=launcher.slurm_env)


def launcher_scripts(launcher: Launcher) -> List[str]:
    """The scripts (relative to the repository root) the launcher's commands call."""
    return {'python': ['tools/train.py', 'tools/test.py'],
            'dist': ['tools/dist_train.sh', 'tools/dist_test.sh'],
            'slurm': ['tools/slurm_train.sh', 'tools/slurm_test.sh']}[launcher.kind]


def missing_scripts(launcher: Launcher) -> List[str]:
    """The launcher's scripts that this checkout lacks."""
    return [s for s in launcher_scripts(launcher) if not osp.isfile(osp.join(ROOT, s))]
