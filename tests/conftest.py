"""Shared fixtures. Backends (``require``) and the other packages CI installs (``require_module``:
mpe2, pygame, Ray, the demo plugin, the docs tools) that are not installed are skipped, unless
XMARL_REQUIRE_BACKENDS=1 (set by CI), which turns a missing one into a failure."""

from __future__ import annotations

import hashlib
import importlib
import os
from types import ModuleType

import numpy as np
import pytest

from xmarl import registry

BACKENDS = ["torch", "tensorflow", "mindspore"]


def weights_digest(w: dict[str, np.ndarray]) -> str:
    """sha256 over every array's name, dtype, shape and bytes (sorted by name)."""
    h = hashlib.sha256()
    for k in sorted(w):
        h.update(k.encode() + str(w[k].dtype).encode() + str(w[k].shape).encode())
        h.update(np.ascontiguousarray(w[k]).tobytes())
    return h.hexdigest()


def require(backend: str) -> None:
    if not registry.backend_installed(backend):
        if os.environ.get("XMARL_REQUIRE_BACKENDS") == "1":
            pytest.fail(f"backend {backend} must be installed (XMARL_REQUIRE_BACKENDS=1)")
        pytest.skip(f"{backend} not installed")


def require_module(name: str, install: str) -> ModuleType:
    """Import and return module ``name`` (e.g. ``"mpe2.simple_spread_v3"``, ``"ray"``,
    ``"xmarl_demo_plugin"``). When it (or a package above it) is not installed, skip the test,
    or fail it under XMARL_REQUIRE_BACKENDS=1; ``install`` is the command that installs it. An
    installed module that fails to import is an error either way, never a skip. Works at a test
    module's top level too (skips or fails the whole module)."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as e:
        parts = name.split(".")
        if e.name not in {".".join(parts[:i]) for i in range(1, len(parts) + 1)}:
            raise  # the module is there but imports something missing: a broken install, not a skip
        if os.environ.get("XMARL_REQUIRE_BACKENDS") == "1":
            pytest.fail(f"{name} must be installed (XMARL_REQUIRE_BACKENDS=1): {install}")
        pytest.skip(f"{name} not installed: {install}", allow_module_level=True)  # also at a module's top


# CI runs the tests in two processes (pytest-xdist, ``-n 2 --dist loadgroup``): each test file stays
# in one process, so a module's expensive fixture (the parity reports, a trained compare) is built
# once, and the files that start local Ray clusters run one after another in the same process.
RAY_FILES = {"test_compare.py", "test_preemption.py", "test_ray_cluster.py", "test_tune.py"}


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("xdist_group") is None:
            name = item.path.name
            item.add_marker(pytest.mark.xdist_group("ray" if name in RAY_FILES else name))


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    require(request.param)
    return request.param


@pytest.fixture
def out_dir(tmp_path):
    return tmp_path / "runs"


def crash_after(trainer, step: int, learner=None) -> None:
    """Make ``trainer.train()`` raise ``RuntimeError("simulated crash")`` at the first update after
    env step ``step`` (``learner``: which of the trainer's learners updates; default its only one),
    as a killed process would stop: the checkpoints written before are what is left."""
    learner = trainer.learner if learner is None else learner
    update = learner.update

    def crash(batch):
        if trainer.state.step > step:
            raise RuntimeError("simulated crash")
        return update(batch)

    learner.update = crash
