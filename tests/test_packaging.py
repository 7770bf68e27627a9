"""Packaging, CLI and docs contracts: the distribution name and extras, the one-line message
for a missing extra, `lpn --version` / `lpn list`, no progress bars in logs, docstrings on every
public name, and nothing citing a file outside the repository."""

import importlib
import inspect
import os
import pkgutil
import re
import subprocess
import sys

import pytest

import lpn
from lpn import _extras, cli
from lpn.experiments import NAMES
from lpn.experiments._common import Bar

ROOT = os.path.join(os.path.dirname(__file__), "..")


def _read(*parts):
    path = os.path.join(ROOT, *parts)
    if not os.path.exists(path):
        pytest.skip(f"{'/'.join(parts)} not present (installed-package run)")
    with open(path, encoding="utf-8") as f:
        return f.read()


def test_version_flag(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["--version"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert out.strip() == f"lpn {lpn.__version__} (lpn-pheromone)"


def test_list_names_every_experiment_once(capsys):
    assert cli.main(["list"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [ln.split()[0] for ln in lines] == list(NAMES)
    assert all(len(ln.split(None, 1)) == 2 for ln in lines)  # each has a description


def test_missing_extra_is_one_line_with_the_install_command(monkeypatch, capsys, tmp_path):
    real = _extras.importlib.util.find_spec
    monkeypatch.setattr(_extras.importlib.util, "find_spec",
                        lambda name: None if name == "sklearn" else real(name))
    assert cli.main(["run", "regression", "--quick", "--out", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("lpn run needs the experiments extra (missing: "), err
    assert "sklearn" in err[0]
    assert err[0].endswith(": pip install 'lpn-pheromone[experiments]'"), err
    assert not os.listdir(tmp_path)  # nothing ran


def test_require_passes_when_present_and_names_the_extra_when_not():
    _extras.require("x", "experiments", "numpy")
    with pytest.raises(_extras.MissingExtraError, match=r"pip install 'lpn-pheromone\[river\]'"):
        _extras.require("lpn.river", "river", "numpy", "no_such_module_lpn_test")
    assert issubclass(_extras.MissingExtraError, ImportError)


def test_no_progress_bar_when_stderr_is_not_a_terminal(tmp_path):
    pytest.importorskip("sklearn")
    pytest.importorskip("matplotlib")
    pytest.importorskip("tqdm")
    proc = subprocess.run([sys.executable, "-m", "lpn", "run", "regression", "--quick",
                           "--out", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "step" not in proc.stderr and "it/s" not in proc.stderr, proc.stderr
    assert "1/1 criteria passed" in proc.stdout


def test_bar_is_created_lazily_with_its_total(monkeypatch):
    pytest.importorskip("tqdm")
    import io

    from lpn.experiments import _common

    buf = io.StringIO()
    monkeypatch.setattr(_common, "_stderr_is_terminal", lambda: True)
    monkeypatch.setattr(sys, "stderr", buf)
    bar = Bar("demo", True)
    assert buf.getvalue() == ""  # no empty "0step" bar before the work is known
    bar.add_total(10)
    bar.update(10)
    bar.close()
    # the defect was an empty bar ("0step [00:00, ?step/s]"); a rate like "171897.70step/s"
    # also contains "0step", so look for the empty counter itself
    assert "10/10" in buf.getvalue() and not re.search(r"(^|[\s:])0step", buf.getvalue())
    off = Bar("demo", False)
    off.add_total(5)
    assert off._bar is None


def _public_modules():
    names = ["lpn"] + [m.name for m in pkgutil.walk_packages(lpn.__path__, "lpn.")]
    skip = ("lpn.__main__", "lpn._lpn")
    for name in names:
        if name in skip:
            continue
        try:
            yield importlib.import_module(name)
        except ImportError as e:  # modules behind a missing extra are skipped
            if (e.name or "").startswith("lpn"):
                raise


def test_every_public_name_has_a_docstring():
    missing = []
    for mod in _public_modules():
        if not (mod.__doc__ or "").strip():
            missing.append(mod.__name__)
        for attr, obj in vars(mod).items():
            if attr.startswith("_") or getattr(obj, "__module__", None) != mod.__name__:
                continue
            if not (inspect.isclass(obj) or inspect.isfunction(obj)):
                continue
            if not (obj.__doc__ or "").strip():
                missing.append(f"{mod.__name__}.{attr}")
            if inspect.isclass(obj):
                for m, v in vars(obj).items():
                    if m.startswith("_"):
                        continue
                    f = v.fget if isinstance(v, property) else getattr(v, "__func__", v)
                    if (inspect.isfunction(f) or isinstance(v, property)) and not (
                            f.__doc__ or "").strip():
                        missing.append(f"{mod.__name__}.{attr}.{m}")
    for name in lpn.__all__:
        if name != "__version__" and not (getattr(lpn, name).__doc__ or "").strip():
            missing.append(f"lpn.{name}")
    assert not missing, missing


def test_no_file_cites_design_md():
    hits = []
    for top in ("README.md", "CHANGELOG.md", "python", "src", "docs", "tests", "examples",
                "benches", "pyproject.toml", "Cargo.toml", "mkdocs.yml"):
        path = os.path.join(ROOT, top)
        if not os.path.exists(path):
            continue
        files = [path] if os.path.isfile(path) else [
            os.path.join(d, f) for d, _, fs in os.walk(path) for f in fs
            if f.endswith((".py", ".rs", ".md", ".pyi", ".toml", ".yml"))]
        for f in files:
            if f.endswith("test_packaging.py"):
                continue
            with open(f, encoding="utf-8") as fh:
                if "DESIGN" + ".md" in fh.read():
                    hits.append(os.path.relpath(f, ROOT))
    assert not hits, hits


def test_metadata_name_core_dependencies_and_extras():
    text = _read("pyproject.toml")
    assert re.search(r'^name = "lpn-pheromone"$', text, re.M)
    deps = re.search(r"^dependencies = \[(.*?)\]", text, re.M | re.S).group(1)
    assert re.findall(r'"([A-Za-z0-9_.-]+)', deps) == ["numpy"]
    for extra in ("experiments", "sklearn", "river", "ray", "test", "docs"):
        assert re.search(rf"^{extra} = \[", text, re.M), extra
    assert "ruff" not in text.split("[project.optional-dependencies]")[1].split("[project.scripts]")[0]
    cargo = _read("Cargo.toml")
    assert re.search(r'^name = "lpn-pheromone"$', cargo, re.M)
    assert 'abi3-py39' in cargo
    assert _read("LICENSE").startswith("MIT License")


def test_readme_images_are_absolute_urls_on_the_stated_repository():
    repo = re.search(r'^Repository = "https://github.com/([^"]+)"$', _read("pyproject.toml"),
                     re.M).group(1)
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", _read("README.md"))
    assert images
    for url in images:
        assert url.startswith(f"https://raw.githubusercontent.com/{repo}/main/"), url
        local = url.split("/main/", 1)[1]
        assert os.path.exists(os.path.join(ROOT, local)), local  # the file is in the repo
