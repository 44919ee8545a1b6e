"""scripts/bootstrap.sh finds a Python >= 3.12: $PYTHON first, then the PATH, then pyenv's
installs - also with pyenv on the PATH and PYENV_ROOT unset (a fresh login shell, where `pyenv
root` names an empty ~/.pyenv) - and says what to do when there is none."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "bootstrap.sh"
TOOLS = ("bash", "env", "readlink", "dirname", "ls", "grep", "sort", "awk", "tr", "sed", "cat", "sha256sum", "cut")
FAKE_PYENV = """#!/usr/bin/env bash
# pyenv's own answer to `pyenv root` without PYENV_ROOT: ~/.pyenv (here: empty)
[ "$1" = root ] && { echo "${PYENV_ROOT:-$HOME/.pyenv}"; exit 0; }
exit 1
"""


@pytest.fixture
def machine(tmp_path):
    """A HOME, a PATH holding only the shell tools the script uses, and a pyenv install elsewhere
    (root/bin/pyenv -> ../libexec/pyenv; versions/3.11.9 and 3.12.9)."""
    tools = tmp_path / "tools"
    tools.mkdir()
    for tool in TOOLS:
        (tools / tool).symlink_to(shutil.which(tool))
    pyenv = tmp_path / "opt" / "pyenv"
    (pyenv / "libexec").mkdir(parents=True)
    (pyenv / "libexec" / "pyenv").write_text(FAKE_PYENV)
    (pyenv / "libexec" / "pyenv").chmod(0o755)
    (pyenv / "bin").mkdir()
    (pyenv / "bin" / "pyenv").symlink_to("../libexec/pyenv")
    old = pyenv / "versions" / "3.11.9" / "bin"
    old.mkdir(parents=True)
    (old / "python3").write_text("#!/bin/sh\n[ \"$1\" = -V ] && { echo 'Python 3.11.9'; exit 0; }\nexit 1\n")
    (old / "python3").chmod(0o755)
    new = pyenv / "versions" / "3.12.9" / "bin"
    new.mkdir(parents=True)
    (new / "python3").symlink_to(sys.executable)  # this interpreter is >= 3.12
    home = tmp_path / "home"
    home.mkdir()
    return {"home": home, "tools": tools, "pyenv": pyenv, "old": old / "python3", "new": new / "python3"}


def _find(machine, *, pyenv_on_path: bool, **env) -> subprocess.CompletedProcess:
    """bootstrap.sh --find-python in an environment built from scratch (no PYENV_ROOT)."""
    path = f"{machine['pyenv'] / 'bin'}:{machine['tools']}" if pyenv_on_path else str(machine["tools"])
    return subprocess.run(["bash", str(SCRIPT), "--find-python"], capture_output=True, text=True, timeout=30,
                          env={"HOME": str(machine["home"]), "PATH": path, **env})  # fmt: skip


def test_pyenv_on_the_path_without_pyenv_root_is_found(machine):
    result = _find(machine, pyenv_on_path=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(machine["new"])


def test_python_names_the_interpreter(machine):
    result = _find(machine, pyenv_on_path=False, PYTHON=str(machine["new"]))
    assert (result.returncode, result.stdout.strip()) == (0, str(machine["new"]))
    old = _find(machine, pyenv_on_path=True, PYTHON=str(machine["old"]))
    assert old.returncode == 2
    assert old.stderr.splitlines()[0] == (f"bootstrap: PYTHON={machine['old']} is not a Python >= 3.12 "
                                          "(Python 3.11.9); name a Python 3.12 or newer.")  # fmt: skip


def test_no_python_says_what_was_tried_and_what_to_do(machine):
    result = _find(machine, pyenv_on_path=False)
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert lines[0] == "bootstrap: ml4t-live needs Python >= 3.12 and none was found."
    assert "    - pyenv: not on the PATH, PYENV_ROOT unset, no ~/.pyenv" in lines
    assert any("PYTHON=/path/to/python3.12 ./scripts/demo" in line for line in lines)
    assert os.access(SCRIPT, os.X_OK)
