"""Runs Python code in a fresh interpreter for the tests that fork, spawn or
change the environment: python/ on its path, the native library of this run,
and a timeout, so that a hang fails the test instead of stalling it."""

import os
import subprocess
import sys

import pytest

from ntcb import _native

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))


def run(args, timeout=240, **env):
    """Runs python3 with args (a script and its arguments, or ["-c", code]);
    env overrides the environment. Returns (returncode, stdout + stderr)."""
    e = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "python"), PYTHONDONTWRITEBYTECODE="1",
             NTCB_LIBRARY=_native.library_path())
    e.update(env)
    try:
        p = subprocess.run([sys.executable, *args], env=e, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as x:
        pytest.fail(f"the child hung (killed after {timeout} s): {x.stdout} {x.stderr}")
    return p.returncode, p.stdout + p.stderr
