"""``import xmarl`` must not import any deep-learning framework, and must work without them; the
tests' own import guard (``require_module``) skips or fails a missing package as CI needs."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import require_module

BLOCK = "import sys\nfor m in ('torch', 'tensorflow', 'mindspore'):\n    sys.modules[m] = None\n"


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_import_xmarl_imports_no_framework():
    p = _run("import sys, xmarl\nxmarl.load_config('maddpg', 'target', 'torch')\n"
             "print(sorted(m for m in ('torch', 'tensorflow', 'mindspore', 'keras') if m in sys.modules))")
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "[]"


def test_xmarl_works_without_frameworks_and_names_the_extra():
    code = BLOCK + (
        "import xmarl\n"
        "from xmarl import registry\n"
        "assert not any(registry.backend_installed(b) for b in ('torch', 'tensorflow', 'mindspore'))\n"
        "try:\n"
        "    xmarl.run('maddpg', 'tensorflow', 'target', steps=10, out_dir='unused')\n"
        "except xmarl.errors.BackendNotInstalledError as e:\n"
        "    print(e)\n"
    )
    p = _run(code)
    assert p.returncode == 0, p.stderr
    assert "pip install 'xmarl[tensorflow]'" in p.stdout


def test_cli_reports_missing_backend_in_one_line(tmp_path):
    argv = ["run", "-b", "torch", "-e", "target", "--out-dir", str(tmp_path)]
    code = BLOCK + f"from xmarl.cli import main\nraise SystemExit(main({argv!r}))"
    p = _run(code)
    assert p.returncode == 2
    err = p.stderr.strip().splitlines()
    assert len(err) == 1 and "pip install 'xmarl[torch]'" in err[0]
    assert not any(tmp_path.iterdir())


def test_require_module_skips_or_fails_a_missing_module_and_never_hides_a_broken_one(tmp_path, monkeypatch):
    """tests/conftest.py's ``require_module`` (mpe2, Ray, the demo plugin, the docs tools): a
    missing module skips, or fails under XMARL_REQUIRE_BACKENDS=1 (CI); an installed module whose
    own import fails is an error, not a skip."""
    (tmp_path / "xmarl_test_pkg").mkdir()
    (tmp_path / "xmarl_test_pkg" / "__init__.py").write_text("VALUE = 7\n")
    (tmp_path / "xmarl_test_pkg" / "broken.py").write_text("import xmarl_test_missing_dependency\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert require_module("xmarl_test_pkg", "pip install it").VALUE == 7
    monkeypatch.delenv("XMARL_REQUIRE_BACKENDS", raising=False)
    for name in ("xmarl_test_absent", "xmarl_test_absent.sub", "xmarl_test_pkg.absent"):
        with pytest.raises(pytest.skip.Exception, match="pip install it"):
            require_module(name, "pip install it")
    monkeypatch.setenv("XMARL_REQUIRE_BACKENDS", "1")
    with pytest.raises(pytest.fail.Exception, match="must be installed .*pip install it"):
        require_module("xmarl_test_absent", "pip install it")
    for env in ("1", "0"):
        monkeypatch.setenv("XMARL_REQUIRE_BACKENDS", env)
        with pytest.raises(ModuleNotFoundError, match="xmarl_test_missing_dependency"):
            require_module("xmarl_test_pkg.broken", "pip install it")
