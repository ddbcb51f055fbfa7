"""tools/zoo_table.py against the installed mmdet's config folders and docs/zoo.md's table.

Every folder is planned (its config read, the toy model made, its distiller chosen: no build),
and a sample runs its build and one step as the tool does: every family with a note (where the
toy build departs from the rule), the first family of each pair of distiller class and outcome
kind (but ``distils`` with a distiller that a shipped config uses: tests/configs trains those),
and REGRESSIONS. The rows the test computes must be the table's, and no folder may crash.
"""
import glob
import importlib.util
import os.path as osp
import re
from pathlib import Path
from typing import Dict, Tuple

import pytest

from _helpers import ROOT


def _load_tool():
    spec = importlib.util.spec_from_file_location('_zoo_table', osp.join(ROOT, 'tools',
                                                                         'zoo_table.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


zoo_table = _load_tool()


def _doc_rows() -> Dict[str, Tuple[str, str, str]]:
    """family -> (config, outcome, note), as docs/zoo.md's table gives them."""
    rows = {}
    for line in zoo_table.doc_table().splitlines()[2:]:
        if line.startswith('| '):
            family, config, outcome, note = line[2:-2].split(' | ')
            rows[family] = (config, outcome, note)
    return rows


DOC = _doc_rows()
#: Families whose toy build once crashed for a reason the rule now covers (uninitialised
#: weights, more queries than tokens; masks that the pipeline does not load).
REGRESSIONS = ('dino', 'rtmdet')
#: The distillers that the shipped configs use.
SHIPPED = {m for path in glob.glob(osp.join(ROOT, 'configs', '**', '*.py'), recursive=True)
           for m in re.findall(r"type='(Distill\w+)'", Path(path).read_text())}


def _types(cfg) -> set:
    """The class names a model config names (the detector and all of its parts)."""
    if isinstance(cfg, (list, tuple)):
        return set().union(*map(_types, cfg)) if cfg else set()
    if not isinstance(cfg, dict):
        return set()
    found = set().union(*map(_types, cfg.values())) if cfg else set()
    return found | ({cfg['type']} if isinstance(cfg.get('type'), str) else set())


@pytest.fixture(scope='module')
def plans():
    """family -> the plan of the config its row names (or the outcome that needs no step)."""
    return {family: zoo_table.plan_config(family, config)
            for family, (config, _, _) in DOC.items() if config != '-'}


def test_the_table_has_one_row_per_folder_and_no_crash():
    assert list(DOC) == zoo_table.families()  # a new mmdet folder needs the table regenerated
    assert [f for f, (_, outcome, _) in DOC.items() if outcome.startswith('crash')] == []
    last = zoo_table.doc_table().splitlines()[-1]
    assert last == zoo_table.table([(f, c, o, n) for f, (c, o, n) in DOC.items()]).splitlines()[-1]


def test_each_row_names_the_simplest_config_that_runs_here():
    for family, (config, outcome, note) in DOC.items():
        names = zoo_table.coco_configs(family)
        if not names:
            assert (config, outcome) == ('-', 'no COCO config'), family
            continue
        passed_over = re.findall(r'(\S+\.py) needs a CUDA op', note)
        assert config == names[len(passed_over)], family  # the ones before it need CUDA
        assert passed_over == names[:len(passed_over)], family


def test_outcomes_decided_without_a_step_are_the_tables(plans):
    for family, plan in plans.items():
        if isinstance(plan, str) or plan.outcome:  # no model, a package missing, a class refused
            want = plan if isinstance(plan, str) else plan.outcome
            assert DOC[family][1] == want, family


def test_each_refusal_names_a_class_of_its_config(plans):
    """A reason specific to the family: the detector or part class that is refused."""
    for family, plan in plans.items():
        outcome = DOC[family][1]
        if outcome.startswith('refused: '):
            named = set(re.findall(r'\w+', outcome)) & _types(plan.model)
            assert named, (family, outcome)


def _sample(plans) -> list:
    """Every family with a note, the first family of each (distiller, outcome kind) but those
    that distil with a shipped config's distiller, and REGRESSIONS."""
    seen, sample = {(d, 'distils') for d in SHIPPED}, []
    for family, plan in plans.items():
        if isinstance(plan, str) or plan.outcome:
            continue
        kind = (plan.dtype, DOC[family][1].split(':')[0])
        if DOC[family][2] or kind not in seen or family in REGRESSIONS:
            sample.append(family)
        seen.add(kind)
    return sample


def test_a_sample_builds_and_steps_as_the_table_says(plans):
    sample = _sample(plans)
    assert {'dcn', 'carafe', 'ddod', 'detr', 'grid_rcnn', *REGRESSIONS} <= set(sample)
    rows = zoo_table.zoo(sample)
    assert {f: (c, o, n) for f, c, o, n in rows} == {f: DOC[f] for f in sample}


def test_a_part_that_needs_a_missing_package_is_not_built(plans, tmp_path, monkeypatch):
    """BoxInst's data preprocessor refuses to build without scikit-image: its row then reads
    ``not built`` with mmdet's own message, not a crash."""
    import mmdet.models.data_preprocessors.data_preprocessor as preprocessors
    monkeypatch.setattr(preprocessors, 'skimage', None)
    outcome, _ = zoo_table.run_plan(plans['boxinst'], str(tmp_path / 'boxinst.pth'))
    assert outcome == ('not built: skimage is not installed, please install it by: pip install '
                       'scikit-image')
