"""`mypy --strict` over the whole installed package `netpol_pdp` (STYLE.md point 13).

mypy does not run setuptools' editable import hook, and the package is spread over
top-level folders (`index/` is `netpol_pdp.index`, `proto/netpol_pdp/` is the root,
...). So the test lays the package out as it installs: a tree of symlinks built from
`[tool.setuptools.package-dir]` of pyproject.toml, then checks it with
`-p netpol_pdp` and the `[tool.mypy]` configuration of the same file. The cache lives
in `tmp_path`, so every run is a cold one, as in CI (about 15 s here).
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path

import pytest
from mypy import api as mypy_api

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = ROOT / "pyproject.toml"


def link_package_tree(dest: Path) -> Path:
    """Symlink each folder of the package-dir mapping where it lands when installed.

    The root package's folder (`proto/netpol_pdp`) is linked entry by entry, so that
    its sub-packages can be linked beside those entries; a sub-package that lies inside
    a folder already linked (`clients/flowlogs` inside `clients`) needs no link of its own.
    """
    mapping: dict[str, str] = tomllib.loads(PYPROJECT.read_text())["tool"]["setuptools"]["package-dir"]
    for package, folder in sorted(mapping.items(), key=lambda item: item[0].count(".")):
        source = ROOT / folder
        target = dest.joinpath(*package.split("."))
        if package == "netpol_pdp":
            target.mkdir(parents=True)
            for entry in source.iterdir():
                if entry.name != "__pycache__":
                    (target / entry.name).symlink_to(entry)
        elif target.exists():
            assert target.resolve() == source.resolve(), f"{package}: {target} is not {source}"
        else:
            target.symlink_to(source, target_is_directory=True)
    return dest / "netpol_pdp"


def test_mypy_strict_passes_over_the_whole_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tree = tmp_path / "tree"
    package = link_package_tree(tree)
    modules = {
        Path(folder, name).with_suffix("")
        for folder, _, names in os.walk(package, followlinks=True)
        for name in names
        if name.endswith((".py", ".pyi"))
    }
    monkeypatch.chdir(tree)  # -p netpol_pdp is found here, not in site-packages
    stdout, stderr, status = mypy_api.run(
        [
            "--config-file",
            str(PYPROJECT),
            "--cache-dir",
            str(tmp_path / "mypy-cache"),
            "--strict",
            "--no-pretty",
            "-p",
            "netpol_pdp",
        ]
    )
    report = f"mypy exited {status}\n--- stdout\n{stdout}--- stderr\n{stderr}"
    assert status == 0, report
    checked = re.search(r"Success: no issues found in (\d+) source files", stdout)
    assert checked, report
    # Every module of the tree was checked (the count also holds what mypy followed).
    assert int(checked.group(1)) >= len(modules) > 80, report
