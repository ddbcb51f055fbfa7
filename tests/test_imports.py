"""The package's import structure: no function-level imports but optional ones, no cycles.

Every ``mmkdcal/**/*.py`` is parsed with :mod:`ast` (nothing is imported):

- an ``import`` inside a function must avoid an optional dependency and say which, with a
  ``# optional: <which>`` comment on the statement or in the comment lines right above it;
- the graph of imports between the package's files (``from .x import y`` is an edge to
  ``x``; ``from . import name`` to the submodule ``name`` when there is one, else to the package's
  ``__init__``) has no cycle. Imports under ``if TYPE_CHECKING:`` do not count; the implicit
  import of a parent package does not either (every submodule has one).

``NOT_YET_CLEAN`` lists, file by file, what still breaks a rule; a separate test fails when an
entry is no longer needed, so that the list only shrinks.
"""
import ast
from pathlib import Path
from typing import Dict, List, Optional, Set, Tuple

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = 'mmkdcal'
MARK = '# optional:'

#: File (relative to the repository root) -> what it still does that the rules forbid:
#: 'function-level imports' and/or 'cycle'. Each entry is to be removed by fixing the file.
NOT_YET_CLEAN: Dict[str, Set[str]] = {}


def _module_files() -> Dict[str, Path]:
    """Module name -> file, for every Python file of the package (hidden folders skipped)."""
    files = {}
    for path in sorted((ROOT / PACKAGE).rglob('*.py')):
        rel = path.relative_to(ROOT)
        if any(part.startswith('.') for part in rel.parts):
            continue  # e.g. mmkdcal/.mim/configs, the configs shipped inside the package
        parts = list(rel.with_suffix('').parts)
        if parts[-1] == '__init__':
            parts.pop()
        files['.'.join(parts)] = path
    return files


MODULES = _module_files()


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == 'TYPE_CHECKING') or (
        isinstance(test, ast.Attribute) and test.attr == 'TYPE_CHECKING')


def _walk_imports(tree: ast.AST):
    """Yield ``(import node, inside a function)`` for every import not under TYPE_CHECKING."""
    def walk(node: ast.AST, in_function: bool):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                yield child, in_function
            elif isinstance(child, ast.If) and _is_type_checking(child):
                yield from walk(ast.Module(body=child.orelse, type_ignores=[]), in_function)
            else:
                inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                          ast.Lambda))
                yield from walk(child, inner)

    yield from walk(tree, False)


def _is_marked(node: ast.stmt, lines: List[str]) -> bool:
    """Whether the statement, or the comment lines right above it, carry the optional mark."""
    if any(MARK in line for line in lines[node.lineno - 1:node.end_lineno]):
        return True
    i = node.lineno - 2
    while i >= 0 and lines[i].strip().startswith('#'):
        if MARK in lines[i]:
            return True
        i -= 1
    return False


def _base(module: str, is_package: bool, node: ast.ImportFrom) -> Optional[str]:
    """The absolute module a ``from ... import`` names, or None outside the package."""
    if node.level == 0:
        base = node.module or ''
    else:
        parts = module.split('.') if is_package else module.split('.')[:-1]
        parts = parts[:len(parts) - (node.level - 1)]
        base = '.'.join(parts + ([node.module] if node.module else []))
    return base if base == PACKAGE or base.startswith(PACKAGE + '.') else None


def _nearest_module(name: str) -> Optional[str]:
    while name and name not in MODULES:
        name = name.rpartition('.')[0]
    return name or None


def _targets(module: str, node: ast.stmt) -> Set[str]:
    """The package's modules that an import statement in ``module`` runs."""
    is_package = MODULES[module].name == '__init__.py'
    found = set()
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.name == PACKAGE or alias.name.startswith(PACKAGE + '.'):
                found.add(_nearest_module(alias.name))
        return found - {None}
    base = _base(module, is_package, node)
    if base is None:
        return found
    for alias in node.names:
        sub = f'{base}.{alias.name}'
        found.add(sub if sub in MODULES else _nearest_module(base))
    return found - {None}


def _scan() -> Tuple[Dict[str, List[str]], Dict[str, Set[str]]]:
    """(file -> unmarked function-level imports as 'line: code', module -> imported modules)."""
    unmarked: Dict[str, List[str]] = {}
    graph: Dict[str, Set[str]] = {m: set() for m in MODULES}
    for module, path in MODULES.items():
        source = path.read_text()
        lines = source.splitlines()
        for node, in_function in _walk_imports(ast.parse(source, str(path))):
            graph[module] |= _targets(module, node)
            if in_function and not _is_marked(node, lines):
                rel = str(path.relative_to(ROOT))
                unmarked.setdefault(rel, []).append(
                    f'{node.lineno}: {lines[node.lineno - 1].strip()}')
    return unmarked, graph


def _cycles(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """The strongly connected components with a cycle (Tarjan), each sorted."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on_stack: Set[str] = set()
    found = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in graph[v]:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _file(module: str) -> str:
    return str(MODULES[module].relative_to(ROOT))


UNMARKED, GRAPH = _scan()
CYCLES = _cycles(GRAPH)
IN_CYCLES = {_file(m) for cycle in CYCLES for m in cycle}


def _allowed(path: str, rule: str) -> bool:
    return rule in NOT_YET_CLEAN.get(path, set())


def test_function_level_imports_are_marked_optional():
    bad = [f'{path}:{found}' for path, lines in UNMARKED.items()
           if not _allowed(path, 'function-level imports') for found in lines]
    assert not bad, ('function-level imports that avoid no optional dependency (move them to '
                     f'the top, or say which dependency with "{MARK} ..."):\n' + '\n'.join(bad))


def test_no_import_cycles():
    bad = [cycle for cycle in CYCLES
           if not all(_allowed(_file(m), 'cycle') for m in cycle)]
    assert not bad, 'import cycles between files (each line: the modules of one cycle):\n' + \
        '\n'.join(' '.join(cycle) for cycle in bad)


def test_allow_list_only_names_files_that_still_break_a_rule():
    stale = []
    for path, rules in NOT_YET_CLEAN.items():
        still = ({'function-level imports'} if path in UNMARKED else set()) | (
            {'cycle'} if path in IN_CYCLES else set())
        if rules - still:
            stale.append(f'{path}: {sorted(rules - still)}')
    assert not stale, f'remove these from NOT_YET_CLEAN, they are clean now: {stale}'


@pytest.mark.parametrize('source,expected', [
    ('from .. import require_openmmlab', {'mmkdcal'}),
    ('from ..utils.stack import require_openmmlab', {'mmkdcal.utils.stack'}),
    ('from . import losses', {'mmkdcal.models.losses'}),
    ('from .losses import KDLoss', {'mmkdcal.models.losses'}),
    ('import mmkdcal.models.contract', {'mmkdcal.models.contract'}),
    ('from mmkdcal.calibration import ece', {'mmkdcal.calibration'}),
    ('from mmdet.registry import MODELS', set()),
])
def test_edges_resolve_as_python_imports_them(source, expected):
    """The checker's own rule, on statements written in ``mmkdcal/models/__init__.py``."""
    node = ast.parse(source).body[0]
    assert _targets('mmkdcal.models', node) == expected


def test_checker_finds_a_planted_cycle_and_an_unmarked_import():
    graph = {'a': {'b'}, 'b': {'c'}, 'c': {'a'}, 'd': {'a'}, 'e': {'e'}}
    assert _cycles(graph) == [['a', 'b', 'c'], ['e']]
    code = ('def f():\n'
            '    import os\n'
            '    # optional: scipy\n'
            '    import scipy\n'
            '    import numpy  # optional: numpy\n')
    lines = code.splitlines()
    marks = [(node.lineno, inside, _is_marked(node, lines))
             for node, inside in _walk_imports(ast.parse(code))]
    assert marks == [(2, True, False), (4, True, True), (5, True, True)]
