"""``import xmarl`` must not import any deep-learning framework, and must work without them."""

from __future__ import annotations

import subprocess
import sys

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
