"""The shared docstring schema and the Sphinx docs.

* every class xmarl registers per backend has a schema entry, and the three backends' classes
  carry the identical rendered docstring;
* the signature check finds every kind of disagreement in deliberately broken fixture classes
  (and ``xmarl docs-schema --check`` reports the same lines and exit status);
* the docs build with ``sphinx-build -W -n`` (frameworks real, and all mocked) and the built HTML
  has, per shipped method, backend tabs whose classes show that backend's signature and parameters,
  the config reference and only that method's recorded results; config tables with true defaults
  and valid values; one API page per public module with config models as field tables; the
  landing page, tutorials, changelog and citation; no placeholder text or checklist wording;
* in headless Chromium (the real build, served on the loopback): the backend tabs switch together,
  math is typeset by the local MathJax, search finds "gumbel" and "install", pages load with no
  console error and no request off the machine, and every local link and anchor resolves.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

import xmarl
from tests.conftest import BACKENDS, require, require_module
from xmarl import docschema, registry
from xmarl.cli import main
from xmarl.docschema.check import check, check_class, placeholders, shipped_methods
from xmarl.docschema.rendering import render_entry, signature_of
from xmarl.docschema.schema import Schema, all_methods

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "docs" / "_ext"))
import xmarl_docs  # noqa: E402


def _require_all() -> None:
    for b in BACKENDS:
        require(b)


def _require_docs_tools() -> None:
    for module in ("sphinx", "furo", "sphinx_design", "bs4", "mathjax"):
        require_module(module, "pip install -e '.[docs]'")


def _backend_classes() -> list[tuple[str, str, str, type]]:
    """(kind, name, backend, class) of every class that xmarl's own backends register."""
    return [(k, n, b, registry.get(k, n, b)) for k, n, b in registry.entries()
            if b is not None and isinstance(registry.get(k, n, b), type)
            and registry.get(k, n, b).__module__.startswith("xmarl.backends.")]


# -- the schema ----------------------------------------------------------------------------------
def test_every_registered_class_has_a_schema_entry():
    _require_all()
    classes = _backend_classes()
    assert {("learner", "maddpg"), ("policy", "maddpg_actor"), ("representation", "mlp")} <= {
        (k, n) for k, n, _, _ in classes}
    missing = [f"({k}, {n}, {b}) {c.__qualname__}" for k, n, b, c in classes
               if docschema.schema.schema_key(c) not in docschema.classes()]
    assert not missing, f"registered classes without a schema entry in xmarl/docschema/schema.yaml: {missing}"
    wrong = [f"({k}, {n}, {b})" for k, n, b, c in classes
             if docschema.class_entry(docschema.schema.schema_key(c)).registry != (k, n)]
    assert not wrong, f"schema entries that name another registry key: {wrong}"


def test_rendered_docstrings_are_identical_across_backends():
    _require_all()
    import importlib

    checked = 0
    for key, entry in docschema.classes().items():
        if entry.core:
            continue
        docs = {}
        for b in BACKENDS:
            module, _, name = entry.qualname(key, b).rpartition(".")
            docs[b] = getattr(importlib.import_module(module), name).__doc__
        assert len(set(docs.values())) == 1, f"{key}: backends' docstrings differ"
        text = docs["torch"]
        assert text == docschema.render(key)
        assert text.startswith(entry.summary.strip().splitlines()[0])
        for p in entry.params:
            assert re.search(rf"^{re.escape(p.name)} : ", text, re.M), (key, p.name)
        for m in all_methods(key):
            assert re.search(rf"^{re.escape(m)}\(", text, re.M), (key, m)
        checked += 1
    assert checked >= 5  # MLP, MADDPGActor, CentralCritic, Adam, MADDPGLearner at least


def test_schema_matches_the_code():
    """What ``xmarl docs-schema --check`` checks; fails while a new class has no entry."""
    _require_all()
    problems = check()
    assert not problems, "docstring schema and code disagree:\n" + "\n".join(problems)


def test_cli_check_prints_one_line_per_problem_and_fails(monkeypatch, capsys):
    import xmarl.docschema.check as chk

    monkeypatch.setattr(chk, "check", lambda: ["a.B: parameter 'x' is not documented", "c.D: no schema entry 'D'"])
    assert main(["docs-schema", "--check"]) == 1
    out = capsys.readouterr()
    assert out.out.splitlines() == ["a.B: parameter 'x' is not documented", "c.D: no schema entry 'D'"]
    assert "2 problem(s)" in out.err
    monkeypatch.setattr(chk, "check", lambda: [])
    assert main(["docs-schema", "--check"]) == 0
    assert "match the schema" in capsys.readouterr().out
    assert main(["docs-schema", "--show", "MADDPGLearner"]) == 0
    assert capsys.readouterr().out == docschema.render("MADDPGLearner")
    assert main(["docs-schema", "--show", "NoSuchClass"]) == 2
    assert "no docstring schema entry 'NoSuchClass'" in capsys.readouterr().err


# -- the check catches broken classes -----------------------------------------------------------
FIXTURE_SCHEMA = {
    "classes": {
        "Widget": {
            "module": "xmarl.tests_fixture",
            "summary": "A fixture class.",
            "params": [
                {"name": "size", "type": "int", "meaning": "How big."},
                {"name": "scale", "type": "float", "default": "1.0", "meaning": "How much."},
                {"name": "gone", "type": "int", "default": "0", "meaning": "Removed from the code."},
            ],
            "methods": {
                "run": {"summary": "Run it.", "args": [{"name": "steps", "type": "int", "meaning": "How long."}],
                        "returns": {"type": "float", "meaning": "The result."}},
                "stop": {"summary": "Documented, but the class has no such method."},
                "__call__": {"summary": "Forward.", "args": [{"name": "x", "type": "framework tensor",
                                                              "per_backend_type": True, "meaning": "Input."}],
                             "returns": {"type": "framework tensor", "per_backend_type": True, "meaning": "Output."}},
            },
        },
        "Placeholder": {"module": "xmarl.tests_fixture", "summary": "xxxxxx", "params": [
            {"name": "a", "type": "int", "meaning": "TODO"}]},
    },
    "algorithms": {},
}


class Widget:
    def __init__(self, size: int, scale: float = 2.0, extra: str = "") -> None:  # default changed, param added
        pass

    def run(self, steps: str, fast: bool = False) -> None:  # annotation changed, arg added, returns None
        pass

    def reset(self) -> None:  # undocumented public method
        pass

    def forward(self, x: object) -> object:  # the torch forward hook = the schema's __call__
        return x

    def _private(self) -> None:  # not public: not checked
        pass


class GoodWidget:
    def __init__(self, size: int, scale: float = 1.0, gone: int = 0) -> None:
        pass

    def run(self, steps: int) -> float:
        return 0.0

    def stop(self) -> None:
        pass

    def forward(self, x: object) -> object:
        return x


def test_check_finds_every_disagreement_in_a_broken_class():
    schema = Schema.model_validate(FIXTURE_SCHEMA)
    Widget.__doc__ = render_entry("Widget", schema)
    problems = check_class(Widget, "Widget", schema, backend="torch")
    where = f"{__name__}.Widget"
    expected = [
        f"{where}.__init__: parameter 'extra' is not documented",
        f"{where}.__init__: documented parameter 'gone' does not exist",
        f"{where}.__init__: parameter 'scale' has default 2.0, documented 1.0",
        f"{where}: public method 'reset' is not documented",
        f"{where}: documented method 'stop' does not exist",
        f"{where}.run: parameter 'fast' is not documented",
        f"{where}.run: parameter 'steps' is annotated 'str', documented 'int'",
        f"{where}.run: returns None, but a return value 'float' is documented",
    ]
    assert sorted(problems) == sorted(expected)


def test_check_passes_a_matching_class_and_flags_a_stale_docstring():
    schema = Schema.model_validate(FIXTURE_SCHEMA)
    GoodWidget.__doc__ = render_entry("Widget", schema)
    assert check_class(GoodWidget, "Widget", schema, backend="torch") == []
    # in TensorFlow the forward hook is __call__, so `forward` is an ordinary, undocumented method
    tf_problems = check_class(GoodWidget, "Widget", schema, backend="tensorflow")
    assert f"{__name__}.GoodWidget: public method 'forward' is not documented" in tf_problems
    assert f"{__name__}.GoodWidget: documented method '__call__' does not exist" in tf_problems
    GoodWidget.__doc__ = "A hand-written docstring."
    assert check_class(GoodWidget, "Widget", schema, backend="torch") == [
        f"{__name__}.GoodWidget: docstring is not the one rendered from schema entry 'Widget' "
        f"(decorate the class with @documented)"]


def test_check_flags_placeholder_text_and_unregistered_schema_gaps():
    from xmarl.docschema.check import check_entry

    schema = Schema.model_validate(FIXTURE_SCHEMA)
    problems = check_entry("Placeholder", schema)
    assert "schema entry 'Placeholder': placeholder text 'xxxxxx' in the rendered docstring" in problems
    assert "schema entry 'Placeholder': placeholder text 'TODO' in the rendered docstring" in problems
    assert placeholders("fine text, no TODOs here") == []  # 'TODOs' is a word of its own
    assert check_entry("Widget", schema) == []


def test_check_flags_a_registered_class_without_an_entry():
    require("torch")

    class Undocumented:
        def __init__(self, n: int) -> None:
            pass

    Undocumented.__module__ = "xmarl.backends.torch.docs_fixture"
    key = ("policy", "docs_fixture_undocumented", "torch")
    registry.add(*key[:2], Undocumented, backend=key[2])
    try:
        problems = check()
    finally:
        registry._ENTRIES.pop(key)
    line = (f"xmarl.backends.torch.docs_fixture.{Undocumented.__qualname__}: registered as "
            f"(policy, docs_fixture_undocumented, torch) but has no schema entry")
    assert line in problems


def test_docschema_imports_no_framework():
    code = ("import sys, xmarl, xmarl.docschema, xmarl.docschema.check\n"
            "from xmarl.docschema import render; render('MADDPGLearner')\n"
            "print(sorted(m for m in ('torch', 'tensorflow', 'mindspore') if m in sys.modules))")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "[]"


# -- generated pages (no Sphinx needed) ------------------------------------------------------------
def test_markdown_tables_become_rst_tables_without_accidental_lists():
    rst = "\n".join(xmarl_docs.md_to_rst("| a | b |\n|---|---|\n| -1.5 | `x_` |\n| **y** | 2 |\n\n- one\n"))
    assert "   * - a\n     - b" in rst
    assert "   * - \\-1.5\n     - ``x_``" in rst  # a leading '-' would start a nested list
    assert "   * - **y**" in rst and "- one" in rst
    # a recorded command with a trailing space inside backticks still makes a valid literal
    assert xmarl_docs.md_inline("Command: `python b.py `; machine") == "Command: ``python b.py``; machine"


def test_config_rows_come_from_the_schema_and_defaults():
    from xmarl.config.schema import MADDPGConfig

    defaults = yaml.safe_load((ROOT / "configs" / "defaults.yaml").read_text())["maddpg"]
    rows = {r[0]: r for r in xmarl_docs.config_rows(MADDPGConfig, defaults, "maddpg.")}
    assert rows["``maddpg.gamma``"][1:] == ["float (>= 0.0, <= 1.0)", f"``{defaults['gamma']}``", "Discount factor."]
    assert rows["``maddpg.adam.eps``"][2] == "``1.0e-08``"
    assert len(rows) == len(MADDPGConfig.model_fields) - 1 + 2  # adam is two rows


# -- the Sphinx build --------------------------------------------------------------------------------
def _build(out: Path, mock: str | None) -> subprocess.Popen:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONWARNINGS": "ignore"}
    if mock:
        env["XMARL_DOCS_MOCK"] = mock
    cmd = [sys.executable, "-m", "sphinx", "-W", "-n", "--keep-going", "-q", "-b", "html", "-d", str(out / "doctrees"),
           str(ROOT / "docs"), str(out / "html")]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Two builds side by side: every framework real, and every framework mocked (as when none is installed)."""
    _require_docs_tools()
    _require_all()
    # the first build generates docs/_generated; the second starts once those pages exist
    real_dir, mock_dir = tmp_path_factory.mktemp("docs-real"), tmp_path_factory.mktemp("docs-mock")
    xmarl_docs.generate(ROOT, ROOT / "docs" / "_generated")
    procs = {"real": (_build(real_dir, None), real_dir), "mock": (_build(mock_dir, "all"), mock_dir)}
    out = {}
    for name, (p, d) in procs.items():
        log, _ = p.communicate(timeout=600)
        out[name] = (p.returncode, log, d / "html")
    return out


def _soup(path: Path):
    from bs4 import BeautifulSoup

    return BeautifulSoup(path.read_text(encoding="utf-8"), "html.parser")


def _warnings(log: str) -> list[str]:
    """Sphinx's warnings and errors (TensorFlow's own start-up log line is not one)."""
    return [line for line in log.splitlines() if re.search(r"\b(WARNING|ERROR)\b", line) and "absl::" not in line]


@pytest.mark.parametrize("which", ["real", "mock"])
def test_docs_build_with_warnings_as_errors(built, which):
    rc, log, html = built[which]
    assert rc == 0 and not _warnings(log), f"sphinx-build -W -n ({which}) failed:\n{log[-4000:]}"
    assert (html / "index.html").exists() and (html / "_generated" / "methods" / "maddpg.html").exists()
    errors = [f"{p.relative_to(html)}: {e.get_text(' ', strip=True)[:120]}" for p in sorted(html.rglob("*.html"))
              for e in _soup(p).select(".system-message, .problematic")]
    assert not errors, errors  # reST errors that Sphinx does not count as warnings


def _methods_with_classes() -> list[str]:
    return [m for m in xmarl_docs.shipped_methods(ROOT) if xmarl_docs.classes_of(m)]


@pytest.mark.parametrize("which", ["real", "mock"])
def test_method_pages_have_backend_tabs_with_parameter_tables(built, which):
    rc, log, html = built[which]
    assert rc == 0, log[-2000:]
    methods = _methods_with_classes()
    assert "maddpg" in methods
    for method in methods:
        page = _soup(html / "_generated" / "methods" / f"{method}.html")
        for key, entry in xmarl_docs.classes_of(method):
            section = page.find("section", id=key.lower())
            assert section is not None, (method, key)
            tabs = section.find("div", class_="sd-tab-set")
            labels = [lab.get_text(strip=True) for lab in tabs.find_all("label", recursive=False)]
            assert labels == ["torch", "TensorFlow", "MindSpore"], (method, key, labels)
            for backend, content in zip(BACKENDS, tabs.find_all("div", class_="sd-tab-content", recursive=False)):
                cls = content.find("dl", class_="class")
                assert cls is not None, f"{method}/{key}: no {backend} class in its tab"
                sig = cls.find("dt").get_text("", strip=True)
                assert f"xmarl.backends.{backend}." in sig
                want_sig = signature_of(key, docschema.load(), backend).replace(" ", "")
                assert sig.replace(" ", "").endswith(f"{key}{want_sig}"), (method, key, backend, sig, want_sig)
                # this backend's parameters only: a TensorFlow-only argument is on the TensorFlow tab alone
                want = [p.name for p in entry.params if not p.backends or backend in p.backends]
                fields = cls.find("dd").find("dl", class_="field-list", recursive=False)
                assert fields is not None or not want, \
                    f"{method}/{key} ({backend}): no parameter table; is the class decorated with @documented?"
                got = [s.get_text() for s in fields.find("dd").find_all("strong")] if want else []
                assert got == want, (method, key, backend, got)
                text = cls.get_text(" ")
                assert " only." not in text, (method, key, backend)  # no other backend's notes
                methods = all_methods(key)
                shown = [d.find("span", class_="sig-name").get_text() for d in cls.find_all("dl", class_="method")]
                for m in methods:
                    mine = not methods[m].backends or backend in methods[m].backends
                    assert (m in shown) == mine, (method, key, backend, m)


def test_a_tensorflow_only_argument_is_documented_for_tensorflow_alone(built):
    """MLP's ``name`` exists in TensorFlow only: its signature and parameter table say so per tab."""
    page = _soup(built["mock"][2] / "_generated" / "methods" / "maddpg.html")
    tabs = page.find("section", id="mlp").find("div", class_="sd-tab-set")
    sigs = {b: c.find("dt").get_text("", strip=True) for b, c in
            zip(BACKENDS, tabs.find_all("div", class_="sd-tab-content", recursive=False))}
    assert sigs["tensorflow"].endswith("MLP(in_dim,hidden_sizes,groups=1,name=None)"), sigs
    assert sigs["torch"].endswith("MLP(in_dim,hidden_sizes,groups=1)") and "*args" not in sigs["mindspore"], sigs


def test_method_pages_have_the_generated_config_reference_and_results(built):
    rc, log, html = built["real"]
    assert rc == 0, log[-2000:]
    defaults = yaml.safe_load((ROOT / "configs" / "defaults.yaml").read_text())
    shipped = shipped_methods()
    assert "maddpg" in shipped
    for method in shipped:
        page = _soup(html / "_generated" / "methods" / f"{method}.html")
        table = page.find("table", class_="xmarl-config")
        assert table is not None, method
        rows = {tr.find_all("td")[0].get_text(strip=True): [td.get_text(" ", strip=True) for td in tr.find_all("td")]
                for tr in table.find("tbody").find_all("tr")}
        model = registry.get("method", method).config_model
        for name, field in model.model_fields.items():
            if isinstance(defaults[method][name], dict):
                continue  # nested sections are flattened: checked through their leaves below
            key = f"{method}.{name}"
            assert key in rows, (method, key)
            assert rows[key][2] == xmarl_docs._yaml_value(defaults[method][name])
            assert rows[key][3] == (field.description or "")
        assert page.find("a", href=re.compile(r"^https://arxiv\.org/abs/\d{4}\.\d+")), f"{method}: no paper link"
    # every method's learning records are on its page, with every backend's mean return, and no other
    # method's results are
    for method in shipped:
        text = _soup(html / "_generated" / "methods" / f"{method}.html").get_text(" ")
        learning = ROOT / "benchmarks" / "results" / "learning"
        records = [r for r in sorted((learning / method).rglob("*.md"))  # those of shipped configs
                   if (ROOT / "configs" / r.relative_to(learning).with_suffix(".yaml")).exists()]
        for record in records:
            means = re.findall(r"^\| (\w+) \| \d+ \| \*\*(-?[\d.]+)\*\* \|", record.read_text(), re.M)
            assert len(means) == 3 and all(m in text for _, m in means), (record, means)
        for other in shipped:
            if other != method:
                assert f"{other}/" not in re.sub(r"configs/\S+", "", text.split("Recorded results")[-1]), \
                    (method, other)


def test_results_pages_have_figures_from_the_records_and_no_checklist_wording(built):
    html = built["real"][2]
    bench = _soup(html / "_generated" / "benchmarks.html")
    figures = [img["src"] for img in bench.select("figure img, div.figure img, img")]
    names = {Path(src).name for src in figures}
    assert {"throughput.svg", "commnet-scaling.svg", "learning-maddpg-mpe-simple_spread_v3.svg"} <= names, names
    for src in figures:
        assert (html / "_generated" / src).resolve().exists() or list(html.rglob(Path(src).name)), src
    # a number of the learning table is the mean of the record's runs
    record = json.loads((ROOT / "benchmarks/results/learning/maddpg/mpe/simple_spread_v3.json").read_text())
    torch_mean = np.mean([r["final"]["eval_return"] for r in record["runs"] if r["backend"] == "torch"])
    assert f"{torch_mean:.3f}" in bench.get_text(" ")
    checklist = re.compile(r"\bbar met\b|\bFAIL\b|\(pass\)|: met\b|bar 3x|\bbar <=")
    for path in [html / "index.html", html / "_generated" / "benchmarks.html",
                 *sorted((html / "_generated" / "methods").glob("*.html"))]:
        found = checklist.findall(_soup(path).get_text(" "))
        assert not found, (path.name, found)
    headings = [h.get_text(strip=True).rstrip("¶") for h in bench.select("section > h2")]
    results = ROOT / "benchmarks" / "results"
    file_names = {v for f in results.rglob("*.*") for v in (f.name, f.stem, f.stem.replace("_", " "),
                                                             str(f.relative_to(results).with_suffix("")))}
    assert len(headings) >= 8 and not file_names & set(headings), headings  # headings say what, not where
    landing = _soup(html / "index.html")
    assert landing.find("img", src=re.compile(r"landing-maddpg-spread\.svg$")), "no figure on the landing page"


def test_config_reference_has_true_defaults_and_valid_values(built):
    page = _soup(built["real"][2] / "_generated" / "config.html")
    rows = {}
    for table in page.find_all("table", class_="xmarl-config"):
        for tr in table.find("tbody").find_all("tr"):
            cells = [td.get_text(" ", strip=True) for td in tr.find_all("td")]
            rows[cells[0]] = cells
    defaults = yaml.safe_load((ROOT / "configs" / "defaults.yaml").read_text())
    for key, value in defaults["train"].items():
        if not isinstance(value, dict):  # nested sections are flattened into their leaves
            assert rows[f"train.{key}"][2] == xmarl_docs._yaml_value(value), key
    assert not [k for k, r in rows.items() if r[2] == "required" and not k.startswith("groups.")], rows
    assert "torch" in rows["backend"][3] and "mindspore" in rows["backend"][3] and "maddpg" in rows["method"][3]
    assert rows["groups.<name>.policy"][2] == "learn"
    assert "train" not in rows and "groups" not in rows  # sections are their own tables


def test_api_reference_is_one_page_per_public_module(built):
    html = built["real"][2] / "_generated" / "api"
    pages = {p.stem for p in html.glob("*.html")}
    for module in xmarl_docs.INTERNAL:  # internals exist and are left out
        assert xmarl_docs._module_path(ROOT, module).exists(), f"INTERNAL names a module that is gone: {module}"
        assert module not in pages
    for module in ("xmarl.api", "xmarl.core.interfaces", "xmarl.envs.base", "xmarl.compare.parity",
                   "xmarl.training.checkpoint", "xmarl.core.config", "backends.policies"):
        assert module in pages, module
    config = _soup(html / "xmarl.core.config.html")
    text = config.get_text(" ")
    assert "Annotated[" not in text and "model_config" not in text and "FieldInfo" not in text
    assert config.find("table", class_="xmarl-config") is not None and "maddpg:" in text
    sizes = sorted((p.stat().st_size, p.name) for p in html.glob("*.html"))
    assert sizes[-1][0] < 1_500_000, sizes[-1]  # no single page with everything


def test_landing_tutorials_and_project_pages(built):
    html = built["real"][2]
    landing = _soup(html / "index.html")
    assert landing.find("table", class_="xmarl-methods") is not None
    assert "pip install torch==2.13.0" in landing.get_text()
    assert xmarl.__version__ in landing.find("title").get_text() + landing.get_text(" ")
    for script in sorted((ROOT / "examples").glob("*.py")):
        pages = [p for p in (html / "tutorials").glob("*.html") if script.name in p.read_text()]
        assert pages, f"{script.name}: no tutorial shows it"
    changelog = _soup(html / "_generated" / "changelog.html").get_text(" ")
    assert xmarl.__version__ in changelog
    citation = _soup(html / "_generated" / "citation.html")
    assert "@software{xmarl," in citation.find("div", class_="highlight-bibtex").get_text("")
    assert "Apache-2.0" in citation.get_text(" ") and citation.find("a", href="https://arxiv.org/abs/1706.02275")
    assert (ROOT / "LICENSE").read_text().lstrip().startswith("Apache License")


def test_getting_started_and_install_have_the_readme_commands(built):
    rc, log, html = built["real"]
    readme = (ROOT / "README.md").read_text()
    blocks = xmarl_docs.readme_blocks(readme)
    assert blocks["main-command"][1].strip() in _soup(html / "getting_started.html").get_text()
    assert blocks["test-command"][1].strip() in _soup(html / "install.html").get_text()
    started = _soup(html / "getting_started.html").get_text()
    # no example there needs a backend its install command does not install
    assert 'backend="tensorflow"' not in started.split("More commands")[0]


def test_no_placeholder_text_anywhere_in_the_built_docs(built):
    rc, log, html = built["real"]
    assert rc == 0, log[-2000:]
    found = []
    pages = sorted(html.rglob("*.html"))
    assert len(pages) > 10
    for path in pages:
        text = _soup(path).get_text(" ")
        found += [f"{path.relative_to(html)}: {w}" for w in placeholders(text)]
    assert not found, found


# -- the built site in a real browser -------------------------------------------------------------------
sys.path.insert(0, str(ROOT / "docs" / "_ext"))
import chromium  # noqa: E402


@pytest.fixture(scope="module")
def site(built):
    """The real build served on the loopback, and a headless Chromium."""
    if chromium.find_chromium() is None:
        if os.environ.get("XMARL_REQUIRE_BACKENDS") == "1":
            pytest.fail("Chromium must be installed (XMARL_REQUIRE_BACKENDS=1): apt-get install -y chromium")
        pytest.skip("Chromium not installed: apt-get install -y chromium (or set XMARL_CHROMIUM)")
    rc, log, html = built["real"]
    assert rc == 0, log[-2000:]
    with chromium.serve(html) as base, chromium.Chromium() as browser:
        yield base, browser


MATHJAX_DONE = "window.MathJax && MathJax.startup && MathJax.startup.promise.then(() => true)"


def test_browser_backend_tabs_switch_every_class_together(site):
    base, browser = site
    page = browser.open(f"{base}/_generated/methods/maddpg.html")
    state = ("[...document.querySelectorAll('.sd-tab-set.xmarl-backends')].map(set => {"
             " const on = set.querySelector(':scope > input:checked');"
             " const label = set.querySelector(`:scope > label[for='${on.id}']`).textContent.trim();"
             " const shown = [...set.querySelectorAll(':scope > .sd-tab-content')]"
             "   .filter(c => c.offsetParent !== null).map(c => c.querySelector('dt')?.textContent || '');"
             " return [label, shown]; })")
    before = page.evaluate(state)
    assert len(before) >= 4 and all(label == "torch" for label, _ in before), before
    page.click(".sd-tab-set.xmarl-backends > label[data-sync-id='tensorflow']")
    after = page.wait_for(f"(() => {{ const s = {state}; return s.every(([l]) => l === 'TensorFlow') && s; }})()")
    for label, shown in after:
        assert len(shown) == 1 and "xmarl.backends.tensorflow." in shown[0], (label, shown)
    page.click(".sd-tab-set.xmarl-backends > label[data-sync-id='mindspore']")
    page.wait_for(f"{state}.every(([l, shown]) => l === 'MindSpore' && shown[0].includes('backends.mindspore.'))")
    assert page.console == []


def test_browser_math_is_typeset_without_a_network(site):
    base, browser = site
    for name in ("maddpg", "coma", "commnet"):
        page = browser.open(f"{base}/_generated/methods/{name}.html")
        assert page.wait_for(MATHJAX_DONE)
        math = page.evaluate("[...document.querySelectorAll('.math')].map(m => {"
                             " const svg = m.querySelector('mjx-container svg');"
                             " return [!!svg, svg ? svg.getBoundingClientRect().width : 0, m.innerText]; })")
        assert len(math) >= 4, (name, math)
        assert all(ok and width > 5 for ok, width, _ in math), (name, math)
        text = page.evaluate("document.body.innerText")
        assert "\\gamma" not in text and "\\(" not in text and "\\mathbb" not in text, name  # no raw LaTeX
        off_site = [u for u in page.requests if not u.startswith((base, "data:", "blob:", "about:"))]
        assert not off_site, off_site
        assert page.console == [], page.console


def _search(page, base: str, query: str) -> list[str]:
    page.open(f"{base}/search.html?q={query}")
    page.wait_for("/Search finished|did not match/.test(document.querySelector('.search-summary')?.innerText || '')")
    return page.evaluate("[...document.querySelectorAll('#search-results li a')].map(a => a.getAttribute('href'))")


def test_browser_search_finds_gumbel_and_install(site):
    base, browser = site
    page = browser.new_page()
    gumbel = _search(page, base, "gumbel")
    assert any("methods/maddpg.html" in h for h in gumbel), gumbel
    install = _search(page, base, "install")
    assert any(h.split("#")[0].endswith("install.html") for h in install), install
    assert page.console == [], page.console


PAGES = ("index.html", "install.html", "getting_started.html", "environments.html", "tutorials/index.html",
         "tutorials/method_plugin.html", "tutorials/compare_backends.html", "_generated/benchmarks.html",
         "_generated/config.html", "_generated/methods/maddpg.html", "_generated/api/index.html",
         "_generated/api/backends.policies.html", "_generated/changelog.html")


def test_browser_pages_load_with_no_console_error_and_nothing_off_the_machine(site):
    base, browser = site
    for name in PAGES:
        page = browser.open(f"{base}/{name}")
        page.wait_for("document.readyState === 'complete' && [...document.images].every(i => i.complete)")
        if page.evaluate("!!document.querySelector('.math')"):
            page.wait_for(MATHJAX_DONE)
        broken = page.evaluate("[...document.images].filter(i => i.naturalWidth === 0).map(i => i.src)")
        assert not broken, (name, broken)
        assert page.console == [], (name, page.console)
        off_site = [u for u in page.requests if not u.startswith((base, "data:", "blob:", "about:"))]
        assert not off_site, (name, off_site)


def test_every_local_link_and_anchor_resolves(built):
    html = built["real"][2]
    texts = {p: p.read_text(encoding="utf-8") for p in html.rglob("*.html") if "_sources" not in p.parts}
    ids = {p: set(re.findall(r'\bid="([^"]+)"', t)) for p, t in texts.items()}
    broken, checked = [], 0
    for page, text in sorted(texts.items()):
        for url in re.findall(r'<(?:a|img|link|script)\b[^>]*?\b(?:href|src)="([^"]*)"', text):
            url = url.replace("&amp;", "&")
            if not url or re.match(r"^[a-z][a-z0-9+.-]*:", url):
                continue  # external (page loads above show none is fetched) or mailto:
            path_part, _, frag = url.partition("#")
            target = (page.parent / path_part.split("?")[0]).resolve() if path_part else page
            checked += 1
            if not target.exists():
                broken.append(f"{page.relative_to(html)}: {url}")
            elif frag and target.suffix == ".html" and frag not in ids.get(target, set()):
                broken.append(f"{page.relative_to(html)}: {url} (no such anchor)")
    assert checked > 1000 and not broken, broken[:30]
