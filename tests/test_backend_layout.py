"""The three backends mirror each other file for file and class for class."""

from __future__ import annotations

import ast
from pathlib import Path

from xmarl import registry

ROOT = Path(__file__).resolve().parents[1] / "xmarl" / "backends"
BACKENDS = ("torch", "tensorflow", "mindspore")


def _files(backend: str) -> set[str]:
    return {str(p.relative_to(ROOT / backend)) for p in (ROOT / backend).rglob("*.py")}


def _public_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {n.name for n in tree.body if isinstance(n, (ast.ClassDef, ast.FunctionDef)) and not n.name.startswith("_")}


def test_same_files_in_every_backend():
    files = {b: _files(b) for b in BACKENDS}
    assert files["torch"] == files["tensorflow"] == files["mindspore"], files
    assert {"representations.py", "policies.py", "optimizers.py", "learners/maddpg.py"} <= files["torch"]


def test_same_public_classes_and_functions_in_every_file():
    for rel in _files("torch"):
        names = {b: _public_names(ROOT / b / rel) for b in BACKENDS}
        assert names["torch"] == names["tensorflow"] == names["mindspore"], (rel, names)


def test_same_registry_entries_in_every_installed_backend():
    keys = {}
    for b in BACKENDS:
        if registry.backend_installed(b):
            keys[b] = {(k, n) for (k, n, bb) in registry.entries()
                       if bb == b and getattr(registry.get(k, n, b), "__module__", "").startswith("xmarl.backends.")}
    assert keys and len({frozenset(v) for v in keys.values()}) == 1, keys
    assert ("learner", "maddpg") in next(iter(keys.values()))
