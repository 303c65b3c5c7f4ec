"""Where code lives: imports only point downward between xmarl's packages, the core imports no
deep-learning framework, the trainer knows no method by name, and verification code stays out
of the core."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "xmarl"

#: each top-level part of xmarl and its layer: a module may import its own part and lower layers only
LAYERS = {
    "errors": 0, "files": 0,
    "registry": 1,
    "docschema": 2,
    "core": 3,
    "envs": 4, "buffers": 4, "backends": 4,
    "config": 5,
    "training": 6,
    "api": 7,  # xmarl.run: one run
    "compare": 8,  # many runs, parity, reports
    "cli": 9,
    "__init__": 10, "__main__": 10,
}
FRAMEWORKS = ("torch", "tensorflow", "keras", "mindspore")


def _part(module: str) -> str:
    """``xmarl.core.coma`` -> ``core``; ``xmarl`` -> ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(path: Path) -> list[tuple[int, str]]:
    """Every ``xmarl...`` or top-level module imported anywhere in the file (functions included)."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append((node.lineno, node.module))
            if node.module == "xmarl":  # from xmarl import registry, envs ...
                out += [(node.lineno, f"xmarl.{a.name}") for a in node.names]
    return out


def _modules() -> list[tuple[str, Path]]:
    files = sorted(ROOT.rglob("*.py"))
    return [(".".join(("xmarl", *p.relative_to(ROOT).with_suffix("").parts)).replace(".__init__", ""), p)
            for p in files]


def test_every_part_of_xmarl_has_a_layer():
    parts = {p.stem if p.is_file() else p.name for p in ROOT.iterdir()
             if p.suffix == ".py" or (p.is_dir() and any(p.rglob("*.py")))}
    assert parts == set(LAYERS), sorted(parts ^ set(LAYERS))


def test_imports_point_downward():
    """core imports nothing from compare, training, config or cli; config nothing from training;
    no part imports a part of its own layer or above (``if TYPE_CHECKING`` imports included)."""
    bad = []
    for name, path in _modules():
        own = _part(name)
        for line, target in _imports(path):
            if target.split(".")[0] != "xmarl" or target == "xmarl":
                continue
            other = _part(target)
            if other != own and LAYERS[other] >= LAYERS[own]:
                bad.append(f"{path.relative_to(ROOT.parent)}:{line} ({own}, layer {LAYERS[own]}) imports {target} "
                           f"({other}, layer {LAYERS[other]})")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("part", [p for p in LAYERS if p not in ("backends", "__init__", "__main__", "cli")])
def test_no_framework_outside_the_backends(part):
    found = [f"{path.relative_to(ROOT.parent)}:{line} imports {target}"
             for name, path in _modules() if _part(name) == part
             for line, target in _imports(path) if target.split(".")[0] in FRAMEWORKS]
    assert not found, found


def test_the_trainer_knows_no_method_by_name():
    """The training loops reach a method only through its MethodSpec/MethodCore contract: no
    method name in the code (docstrings aside), no module lookup, no hasattr, and getattr only
    to read the method's config section."""
    tree = ast.parse((ROOT / "training" / "trainer.py").read_text())
    docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                  if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef)) and n.body
                  and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
    words = set()
    for n in ast.walk(tree):
        if isinstance(n, ast.Name):
            words.add(n.id.lower())
        elif isinstance(n, ast.Attribute):
            words.add(n.attr.lower())
        elif isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docstrings:
            words.update(n.value.lower().split())
        elif isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "getattr":
            assert ast.unparse(n) == "getattr(cfg, cfg.method)", ast.unparse(n)
    assert not words & {"maddpg", "coma", "commnet", "importlib", "hasattr", "update_recurrent"}, words


def test_verification_code_lives_beside_the_core():
    """Parity cases, numpy references and synthetic data are in xmarl.compare.reference."""
    core = "\n".join(p.read_text() for p in (ROOT / "core").glob("*.py"))
    for word in ("parity_cases", "reference_forward", "reference_losses", "td_lambda_targets",
                 "counterfactual_advantage", "synthetic_episodes", "adam_step"):
        assert word not in core, word
    ref = "\n".join(p.read_text() for p in (ROOT / "compare" / "reference").glob("*.py"))
    for word in ("def parity_cases", "def reference_forward", "def td_lambda_targets", "def synthetic_episodes",
                 "def adam_step"):
        assert word in ref, word
