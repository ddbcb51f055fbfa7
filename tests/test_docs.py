"""The README and docs/ say what the code does: links, paths, snippet, messages, notation.

- README.md is at most 200 lines and keeps the test command `.ci/run` calls;
- every relative link of README.md and docs/*.md reaches a file (and a heading, with `#anchor`);
- every repository path they name in backticks exists; no placeholder (`...`) URL is left;
- the README's config snippet parses, its teacher URL is the one MMDetection's model-zoo
  metafile gives for its teacher config, and it builds the distiller it names;
- every message piece docs/troubleshooting.md quotes is in a message the package raises or logs,
  and every exception class the package raises is named there;
- LICENSE is Apache-2.0 as setup.py declares; CITATION.cff and the README cite the same DOI;
- model pairs are written `student <- teacher`, the order of the config file names.
"""
import ast
import glob
import os.path as osp
import re
from typing import Dict, List, Set

import pytest
import torch
import yaml

from _helpers import ROOT

DOCS = ['README.md'] + sorted(osp.relpath(p, ROOT)
                              for p in glob.glob(osp.join(ROOT, 'docs', '*.md')))
CI_COMMAND = 'bash tools/install.sh --test && python -m pytest -q tests'
LINK = re.compile(r'(?<!!)\[[^\]]*\]\(([^)\s]+)\)')
PATH = re.compile(r'`((?:configs|tools|docs|projects|mmkdcal|tests|requirements)/[^`\s]*)`')
FENCE = re.compile(r'```.*?```', re.S)
INLINE = re.compile(r'`[^`\n]*`')
#: Made by `pip install` (setup.py ships configs/ and tools/ there), not in the checkout.
GENERATED = ('mmkdcal/.mim',)


def _read(rel: str) -> str:
    with open(osp.join(ROOT, rel), encoding='utf-8') as f:
        return f.read()


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to '-'."""
    text = re.sub(r'[`*_]', '', heading.strip().lower())
    return re.sub(r'[^\w\- ]', '', text).replace(' ', '-')


def _anchors(rel: str) -> Set[str]:
    text = FENCE.sub('', _read(rel))
    return {_slug(m) for m in re.findall(r'^#+\s+(.+)$', text, re.M)}


def test_slug_matches_github_examples():
    """Premise of the anchor check: GitHub's rule on headings of these docs."""
    assert _slug('Raw or calibrated?') == 'raw-or-calibrated'
    assert (_slug('Into an existing OpenMMLab environment')
            == 'into-an-existing-openmmlab-environment')
    assert _slug('The script: `bash tools/install.sh`') == 'the-script-bash-toolsinstallsh'


def test_readme_is_short_and_keeps_the_ci_command():
    lines = _read('README.md').splitlines()
    assert len(lines) <= 200, len(lines)
    assert CI_COMMAND in lines  # the exact line .ci/run also runs
    assert CI_COMMAND in _read('.ci/run').splitlines()


@pytest.mark.parametrize('doc', DOCS)
def test_relative_links_reach_files_and_headings(doc):
    bad = []
    for target in LINK.findall(INLINE.sub('', FENCE.sub('', _read(doc)))):
        if re.match(r'[a-z]+:', target):
            continue
        path, _, anchor = target.partition('#')
        rel = osp.normpath(osp.join(osp.dirname(doc), path)) if path else doc
        if not osp.exists(osp.join(ROOT, rel)):
            bad.append(target)
        elif anchor and rel.endswith('.md') and anchor not in _anchors(rel):
            bad.append(target)
    assert not bad, f'{doc}: broken links {bad}'


@pytest.mark.parametrize('doc', DOCS)
def test_named_repository_paths_exist(doc):
    missing = []
    for path in PATH.findall(_read(doc)):
        path = path.rstrip('.,;:')
        if any(c in path for c in '<>*{}$') or '...' in path or path.startswith(GENERATED):
            continue  # a pattern, not a path; or made by the install
        if not osp.exists(osp.join(ROOT, path)):
            missing.append(path)
    assert not missing, f'{doc} names paths that do not exist: {missing}'


@pytest.mark.parametrize('doc', DOCS)
def test_no_placeholder_urls(doc):
    urls = re.findall(r'https?://[^\s)\'"`]+', _read(doc))
    assert not [u for u in urls if '...' in u or u.endswith('/..')], doc


def test_the_scan_finds_what_it_checks():
    """Premise: the patterns above see the README's links, paths and snippet URL."""
    readme = _read('README.md')
    assert 'docs/troubleshooting.md' in LINK.findall(readme)
    assert 'configs/demo/kd_gfl_r18w16_r18w32_digits.py' in PATH.findall(readme)
    assert {'docs/install.md', 'docs/own_teacher.md', 'docs/troubleshooting.md',
            'docs/glossary.md'} <= set(DOCS)


# ------------------------------------------------------------------ the README's snippet
def _readme_snippet() -> str:
    blocks = re.findall(r'```python\n(.*?)```', _read('README.md'), re.S)
    found = [b for b in blocks if "type='Distill" in b]
    assert len(found) == 1
    return found[0]


def _metafile_weights(teacher_config: str) -> str:
    """The checkpoint URL MMDetection's metafile lists for ``mmdet::<folder>/<name>.py``."""
    import mmdet
    folder, name = teacher_config.split('::')[1].split('/')
    meta = osp.join(osp.dirname(mmdet.__file__), '.mim', 'configs', folder, 'metafile.yml')
    with open(meta) as f:
        models = yaml.safe_load(f)['Models']
    hits = [m['Weights'] for m in models if m['Name'] == osp.splitext(name)[0]]
    assert len(hits) == 1, teacher_config
    return hits[0]


def test_readme_snippet_teacher_url_is_the_model_zoo_checkpoint_of_its_config(tmp_path):
    from mmengine.config import Config
    path = tmp_path / 'my_kd_config.py'
    path.write_text(_readme_snippet())
    cfg = Config.fromfile(str(path))
    assert cfg.model.teacher_ckpt == _metafile_weights(cfg.model.teacher_config)
    assert cfg.model.teacher_ckpt.startswith('https://download.openmmlab.com/mmdetection/')


def test_readme_snippet_builds_its_distiller(tmp_path):
    """The snippet, with the zoo checkpoint replaced by a local one of the same teacher config."""
    from mmengine.config import Config

    from mmdet.registry import MODELS

    import mmkdcal  # noqa: F401  (registers the distillers)
    from mmkdcal.models.distillers import load_teacher_config
    path = tmp_path / 'my_kd_config.py'
    path.write_text(_readme_snippet())
    cfg = Config.fromfile(str(path))
    teacher = MODELS.build(load_teacher_config(cfg.model.teacher_config))
    torch.save({'state_dict': teacher.state_dict()}, str(tmp_path / 'teacher.pth'))
    del teacher
    cfg.model.teacher_ckpt = str(tmp_path / 'teacher.pth')
    model = MODELS.build(cfg.model)
    assert type(model).__name__ == 'DistillGFL'
    assert sorted(model.distill_inputs.items()) == [('loss_kd', 'cls'), ('loss_ld', 'reg')]
    assert model.teacher.bbox_head.num_classes == model.bbox_head.num_classes == 80
    assert [h['type'] for h in cfg.custom_hooks] == ['TeacherCalibrationHook']


# ------------------------------------------------------------------ troubleshooting
def _joined(node: ast.AST) -> str:
    """The literal text of a message expression; '{}' where a value is formatted in."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return ''.join(v.value if isinstance(v, ast.Constant) else '{}' for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _joined(node.left) + _joined(node.right)
    return '{}'


def _sources() -> List[str]:
    """The package and the checks of its entry points (tools/*.py and what they share in
    tools/harness/; not the job runner of the studies and benchmarks)."""
    return (glob.glob(osp.join(ROOT, 'mmkdcal', '**', '*.py'), recursive=True)
            + glob.glob(osp.join(ROOT, 'tools', '*.py'))
            + [p for p in glob.glob(osp.join(ROOT, 'tools', 'harness', '*.py'))
               if osp.basename(p) != 'jobs.py'])


def _package_messages() -> Dict[str, List[str]]:
    """Exception class -> messages of every exception the package raises or returns to raise,
    plus 'warning' -> every warning it logs (warnings.warn, logger.warning, print_log WARNING)."""
    out: Dict[str, List[str]] = {}
    for path in _sources():
        tree = ast.parse(_read(osp.relpath(path, ROOT)))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, 'id', None) or getattr(node.func, 'attr', '')
            args = [a for a in node.args if not isinstance(a, ast.Starred)]
            is_warning = name in ('warn', 'warning') or (
                name == 'print_log' and any(k.arg == 'level' and 'WARN' in ast.dump(k.value)
                                            for k in node.keywords))
            if is_warning:
                out.setdefault('warning', []).extend(_joined(a) for a in args[:1])
            elif re.search(r'(Error|Exception)$', name):
                # errno-style constructors, OSError(errno, message), carry the message second
                out.setdefault(name, []).extend(_joined(a) for a in args[:2])
        # messages built first and raised or logged by name: `msg = ...`, or returned by a
        # function that makes a warning or message (e.g. under_confidence_warning)
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and any(getattr(t, 'id', '') in ('msg', 'message')
                                                    for t in node.targets):
                out.setdefault('built', []).append(_joined(node.value))
            if isinstance(node, ast.FunctionDef) and re.search(r'warning|message', node.name):
                out.setdefault('warning', []).extend(
                    _joined(r.value) for r in ast.walk(node)
                    if isinstance(r, ast.Return) and r.value is not None)
    return out


def _raised_classes() -> Set[str]:
    names = set()
    for path in _sources():
        for node in ast.walk(ast.parse(_read(osp.relpath(path, ROOT)))):
            if isinstance(node, ast.Raise) and node.exc is not None:
                exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
                name = getattr(exc, 'id', None) or getattr(exc, 'attr', None)
                if name and name[0].isupper() and not name.startswith('_') and \
                        name != 'SystemExit':  # a CLI's exit status, not an error
                    names.add(name)
    return names


def _quoted_pieces() -> List[str]:
    """The bold code spans of the page (a message piece each), line breaks made spaces."""
    return [' '.join(p.split()) for p in re.findall(r'\*\*`([^`]+)`',
                                                    _read('docs/troubleshooting.md'))]


def test_troubleshooting_quotes_messages_the_package_gives():
    messages = [m for ms in _package_messages().values() for m in ms]
    pieces = _quoted_pieces()
    assert len(pieces) >= 150  # premise: the scan sees the page's entries
    stale = [p for p in pieces if not any(p in m for m in messages)]
    assert not stale, f'docs/troubleshooting.md quotes messages no longer in the code: {stale}'


def test_troubleshooting_names_every_exception_class_raised():
    raised = _raised_classes()
    assert {'ValueError', 'TeacherClassesError', 'UsedWorkDirError'} <= raised  # premise
    page = _read('docs/troubleshooting.md')
    assert not [c for c in raised if f'`{c}`' not in page]


def test_troubleshooting_covers_each_warning():
    """Each warning the package logs shares a quoted piece with the page."""
    pieces = _quoted_pieces()
    warnings = _package_messages()['warning']
    assert len(warnings) >= 10  # premise
    uncovered = [w for w in warnings if w.strip('{} ') and not any(p in w for p in pieces)]
    assert not uncovered, uncovered


# ------------------------------------------------------------------ licence, citation, notation
def test_license_and_citation():
    assert 'Apache License' in _read('LICENSE') and 'Version 2.0, January 2004' in _read('LICENSE')
    assert "license='Apache-2.0'" in _read('setup.py')
    cff = yaml.safe_load(_read('CITATION.cff'))
    paper = cff['preferred-citation']
    assert paper['doi'] == '10.1109/ACCESS.2025.3585106'
    assert [a['family-names'] for a in paper['authors']] == ['Kim', 'Park', 'Lee', 'Kwak']
    assert paper['journal'] == 'IEEE Access' and paper['year'] == 2025
    assert cff['license'] == 'Apache-2.0' and cff['type'] == 'software'
    assert 'doi     = {10.1109/ACCESS.2025.3585106}' in _read('README.md')


MODEL = r'(?:R-?\d{2,3}|ResNet-[\w-]+|WRN-[\d-]+|ShuffleNetV2|tiny|RTMDet-\w+|Swin-\w+)'


#: Every page that names model pairs: the docs, and the READMEs of configs/ and projects/.
PAIR_DOCS = DOCS + sorted(osp.relpath(p, ROOT) for pattern in ('configs/**/README.md',
                                                               'projects/**/README.md')
                          for p in glob.glob(osp.join(ROOT, pattern), recursive=True))


def test_arrow_pattern_sees_a_teacher_first_pair():
    assert re.findall(rf'{MODEL}\s*->\s*{MODEL}', 'R-101 -> R-50, WRN-40-2 -> WRN-16-2')
    assert not re.findall(rf'{MODEL}\s*->\s*{MODEL}', 'D-ECE 0.1325 -> 0.0026')


@pytest.mark.parametrize('doc', PAIR_DOCS)
def test_model_pairs_are_written_student_first(doc):
    arrows = re.findall(rf'{MODEL}\s*->\s*{MODEL}', _read(doc))
    assert not arrows, f'{doc}: write `student <- teacher`, not {arrows}'


# ------------------------------------------------------------------ docs/own_teacher.md
def _own_teacher_refusals() -> List[tuple]:
    """(options, exception class, message) of each worked refusal whose check runs at build."""
    text = _read('docs/own_teacher.md')
    found = re.findall(r'```bash\n\s*python tools/train.py (\S+) --cfg-options (.+?)\n\s*```\n\n'
                       r'\s*```text\n\s*(\w+): (.+?)\n\s*```', text)
    return [(config, opts, cls, msg) for config, opts, cls, msg in found]


@pytest.fixture
def user_dir(tmp_path, monkeypatch):
    """A folder with the repository's configs and a (random) demo teacher at the path step 1
    writes, as the worked example has it after `python tools/train.py` of the teacher."""
    from mmengine.config import Config

    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    register_all_modules()
    (tmp_path / 'configs').symlink_to(osp.join(ROOT, 'configs'))
    ckpt = tmp_path / 'work_dirs' / 'gfl_r18w32_digits' / 'iter_400.pth'
    ckpt.parent.mkdir(parents=True)
    torch.manual_seed(0)
    teacher = MODELS.build(Config.fromfile(osp.join(ROOT, 'configs/demo/gfl_r18w32_digits.py'))
                           .model)
    torch.save({'state_dict': teacher.state_dict()}, str(ckpt))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_own_teacher_scan_finds_the_worked_refusals():
    refusals = _own_teacher_refusals()
    assert len(refusals) >= 9
    kinds = {cls for _, _, cls, _ in refusals}
    assert kinds >= {'FileNotFoundError', 'ValueError', 'RuntimeError', 'TeacherClassesError'}


def test_own_teacher_refusals_say_what_the_page_shows(user_dir):
    """Each refusal that the model's build raises, built in-process: same class, same message."""
    import argparse

    from mmengine.config import Config, DictAction

    from mmdet.registry import MODELS

    import mmkdcal  # noqa: F401
    checked = 0
    for config, opts, cls, msg in _own_teacher_refusals():
        if cls == 'TeacherClassesError' or 'https://' in opts:
            continue  # checked by tools/train.py after the build; needs the network
        ns = argparse.Namespace()
        DictAction(option_strings=[], dest='o')(None, ns, opts.strip('"').split())
        cfg = Config.fromfile(config)
        cfg.merge_from_dict(ns.o)
        with pytest.raises(Exception) as info:
            MODELS.build(cfg.model)
        assert type(info.value).__name__ == cls, opts
        assert str(info.value) == msg, opts
        checked += 1
    assert checked >= 7
