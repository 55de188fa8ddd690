"""The package's import structure, read with ``ast`` (module level and inside functions).

The library is a house of floors: foundations at the bottom, then the toy world, the models, the VFX assistant and
the segmenters, the method's stages, around them what teaches, measures and drives the method, and on top the lab
(the toy model's training and the benchmarks). A module
imports only from its own floor or the floors below, nothing imports in a circle, and a function does not
re-import what its module already imported.
"""

from __future__ import annotations

import ast
from pathlib import Path

from dynvfx.paths import REPO_ROOT

PACKAGE = REPO_ROOT / "dynvfx"
#: Every module's floor. A new module must be given one here.
FLOORS = {
    "foundations": ["errors", "paths", "config", "video", "masks"],
    "the toy world": ["toy", "toy.world", "toy.text", "toy.model", "toy.vocabulary", "toy.perception", "toy.judge",
                      "toy.occlusion", "toy.gate", "toy.examples"],
    "the models and their cost": ["pipeline", "cost"],
    "VFX assistant and segmenters": ["planning", "planning.errors", "planning.schema", "planning.keyframes",
                                     "planning.prompts", "planning.dialogue", "planning.cache", "planning.toy",
                                     "planning.openai_backend", "planning.hf_backend", "planning.demo",
                                     "segmentation", "segmentation.base", "segmentation.toy",
                                     "segmentation.user_masks", "segmentation.grounded_sam2", "segmentation.sam3"],
    "the method": ["attention", "anchors", "sampling", "inversion", "refinement", "edit"],
    "around the method": ["", "__main__", "cli", "notebook", "figures", "widgets", "probes", "metrics"],
    "the lab": ["lab", "lab.train", "lab.stats", "lab.pool", "lab.edit_bench", "lab.box_bench", "lab.quality_bench",
                "lab.words_bench", "lab.reports"],
}
LEVEL = {f"dynvfx.{m}".rstrip("."): i for i, mods in enumerate(FLOORS.values()) for m in mods}


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _targets(module: str, node: ast.AST) -> list[str]:
    """The package's modules an ``import`` / ``from ... import`` statement in ``module`` reads."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name in MODULES]
    if node.level:
        base = module if MODULES[module].name == "__init__.py" else module.rsplit(".", 1)[0]
        for _ in range(node.level - 1):
            base = base.rsplit(".", 1)[0]
        base = f"{base}.{node.module}" if node.module else base
    else:
        base = node.module or ""
    if base not in MODULES:
        return []
    return [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]


def _imports(module: str) -> tuple[set[str], list[tuple[int, str]]]:
    """(modules imported at module level, [(line, module)] imported inside functions)."""
    tree = ast.parse(MODULES[module].read_text())
    top = {t for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom)) for t in _targets(module, node)}
    inner = [(node.lineno, t) for fn in ast.walk(tree) if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef))
             for node in ast.walk(fn) if isinstance(node, (ast.Import, ast.ImportFrom))
             for t in _targets(module, node)]
    return top, inner


GRAPH = {m: ({t for t in _imports(m)[0]} | {t for _, t in _imports(m)[1]}) - {m} for m in MODULES}


def test_every_module_has_a_floor():
    assert sorted(set(MODULES) - set(LEVEL)) == [], "give the new module a floor in FLOORS"
    assert sorted(set(LEVEL) - set(MODULES)) == [], "FLOORS names a module that does not exist"


def test_no_module_imports_from_a_higher_floor():
    names = list(FLOORS)
    upward = [f"{m} ({names[LEVEL[m]]}) imports {t} ({names[LEVEL[t]]})"
              for m, deps in GRAPH.items() for t in deps if LEVEL[t] > LEVEL[m]]
    assert upward == []


def test_no_import_cycles():
    def cycle_from(start: str) -> list[str] | None:
        stack = [(start, [start])]
        while stack:
            node, path = stack.pop()
            for t in GRAPH[node]:
                if t == start:
                    return path + [t]
                if t not in path:
                    stack.append((t, path + [t]))
        return None

    cycles = [c for c in map(cycle_from, sorted(GRAPH)) if c]
    assert cycles == [], " ; ".join(" -> ".join(c) for c in cycles)


def test_functions_do_not_reimport_what_their_module_imported():
    redundant = [f"{m}:{line} {t}" for m in MODULES for top, inner in [_imports(m)] for line, t in inner if t in top]
    assert redundant == []


def test_the_reader_sees_imports_inside_functions_and_relative_ones():
    """Negative control: the tests above would see an upward or circular import made inside a function or with a
    relative import."""
    assert "dynvfx.anchors" in GRAPH["dynvfx.attention"]  # imported inside a function
    assert "dynvfx.planning.schema" in GRAPH["dynvfx.planning.dialogue"]  # a relative import
