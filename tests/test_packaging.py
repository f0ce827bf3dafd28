"""The built wheel is the product: it holds every module and data file, and every module imports from it.

An editable install (what the other tests run on) reads the source tree, so a
folder missing from ``[tool.setuptools] packages`` or a data file missing from
``package-data`` would pass every other test and break ``pip install netpol-pdp``.
This test builds the wheel from a copy of the tree, compares its files with the
tree's, and imports every module of the unpacked wheel in a fresh interpreter
that cannot see the source tree.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import textwrap
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
#: Left out of the copy the wheel is built from: not part of any package, or build debris.
_NOT_SOURCE = shutil.ignore_patterns(
    ".git",
    ".ci",
    "build",
    "dist",
    "*.egg-info",
    ".venv*",
    "__pycache__",
    "*.pyc",
    ".*cache",
    "results",
    "tests",
)


def source_files() -> set[str]:
    """Every file of every mapped package folder, as its path inside the wheel."""
    out: set[str] = set()
    for package, folder in PYPROJECT["tool"]["setuptools"]["package-dir"].items():
        base = ROOT / folder
        prefix = package.replace(".", "/")
        for path in base.rglob("*"):
            rel = path.relative_to(base)
            if not path.is_file() or "__pycache__" in rel.parts or path.suffix == ".pyc":
                continue
            # a file below a sub-package's own mapping is counted for that sub-package
            out.add(f"{prefix}/{rel.as_posix()}")
    return out


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if importlib.util.find_spec("setuptools") is None:
        pytest.skip("setuptools is not installed: pip install -e '.[test]' brings it")
    work = tmp_path_factory.mktemp("wheel")
    tree = work / "src"
    shutil.copytree(ROOT, tree, ignore=_NOT_SOURCE)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(work),
            str(tree),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    (built,) = work.glob("netpol_pdp-*.whl")
    return built


def test_every_package_folder_is_listed_in_pyproject() -> None:
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    mapped = PYPROJECT["tool"]["setuptools"]["package-dir"]
    found = set()
    for package, folder in mapped.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder)
            found.add(".".join([package, *rel.parts]))
    assert found - listed == set(), "sub-packages missing from [tool.setuptools] packages"


def test_the_wheel_holds_every_module_and_data_file_of_the_tree(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        shipped = {name for name in archive.namelist() if not name.startswith("netpol_pdp-")}
    missing = source_files() - shipped
    assert missing == set(), f"in the tree but not in the wheel: {sorted(missing)}"


def test_every_module_of_the_wheel_imports_without_the_source_tree(wheel: Path, tmp_path: Path) -> None:
    unpacked = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(unpacked)
    # Dependencies come from this environment's paths (a CI venv may live inside the
    # tree); the source tree stays out: an editable install's finder is set up by
    # site, which -S skips, and no path that holds a netpol_pdp folder is passed on.
    deps = [p for p in sys.path if p and Path(p).is_dir() and not (Path(p) / "netpol_pdp").exists()]
    script = textwrap.dedent(
        """
        import importlib, pkgutil, sys
        import netpol_pdp
        assert netpol_pdp.__file__.startswith(sys.argv[1]), netpol_pdp.__file__
        failed = []
        for info in pkgutil.walk_packages(netpol_pdp.__path__, "netpol_pdp."):
            try:
                importlib.import_module(info.name)
            except Exception as exc:
                failed.append(f"{info.name}: {exc!r}")
        print("\\n".join(failed))
        """
    )
    done = subprocess.run(
        [sys.executable, "-S", "-c", script, str(unpacked)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
        env={"PYTHONPATH": ":".join([str(unpacked), *deps]), "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "", f"modules that do not import from the wheel:\n{done.stdout}"
