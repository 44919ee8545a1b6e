"""The public API named in the design: importable from ``ml4t_live``; venues load on first use."""

from __future__ import annotations

import subprocess
import sys

import ml4t_live


def test_every_public_name_resolves():
    for name in ml4t_live.__all__:
        assert getattr(ml4t_live, name) is not None, name


def test_a_shadow_import_does_not_load_the_venue_libraries():
    code = "import sys, ml4t_live; print('ib_async' in sys.modules, 'alpaca' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "False"]
