"""Shared fixtures. Backends that are not installed are skipped, unless
XMARL_REQUIRE_BACKENDS=1 (set by CI), which turns a missing backend into a failure."""

from __future__ import annotations

import os

import pytest

from xmarl import registry

BACKENDS = ["torch", "tensorflow", "mindspore"]


def require(backend: str) -> None:
    if not registry.backend_installed(backend):
        if os.environ.get("XMARL_REQUIRE_BACKENDS") == "1":
            pytest.fail(f"backend {backend} must be installed (XMARL_REQUIRE_BACKENDS=1)")
        pytest.skip(f"{backend} not installed")


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    require(request.param)
    return request.param


@pytest.fixture
def out_dir(tmp_path):
    return tmp_path / "runs"
