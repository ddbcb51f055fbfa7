"""Benchmarking a set of configs: plan the runs, execute them (resuming), collect the results,
publish the README tables and release the checkpoints. ``tools/benchmark.py`` is the command
line; the steps are described in ``docs/benchmark.md``.
"""
from .collect import collect_results, summarize
from .execute import execute_plan
from .plan import Launcher, Run, discover_configs, make_plan
from .release import plain_student_keys, release_checkpoint
from .state import RunState, inspect_run
from .tables import publish_readme, render_table

__all__ = ['Launcher', 'Run', 'RunState', 'collect_results', 'discover_configs', 'execute_plan',
           'inspect_run', 'make_plan', 'plain_student_keys', 'publish_readme', 'release_checkpoint',
           'render_table', 'summarize']
