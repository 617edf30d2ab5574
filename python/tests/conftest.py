"""Makes python/ntcb importable when pytest runs from the repository root."""

import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the tree (scripts/ is imported too)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import shutil
import subprocess

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
GO = shutil.which("go") or ("/usr/local/go/bin/go" if os.path.exists("/usr/local/go/bin/go") else None)


@pytest.fixture(scope="session")
def ntc_bin(tmp_path_factory):
    """The ntc command built from this checkout, once per test run; the test
    is skipped where Go is not installed."""
    if GO is None:
        pytest.skip("needs the Go toolchain")
    out = str(tmp_path_factory.mktemp("bin") / "ntc")
    env = dict(os.environ, GOFLAGS=os.environ.get("GOFLAGS", "") + " -buildvcs=false")
    subprocess.run([GO, "build", "-o", out, "./cmd/ntc"], cwd=ROOT, check=True, env=env)
    return out
