"""scripts/dump_tokens.py refuses weights it cannot use with a clear error (exit 1), before any work."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
SCRIPT = os.path.join(ROOT, "scripts", "dump_tokens.py")


def run_dump(tmp_path, weights):
    photos = tmp_path / "photos"
    photos.mkdir(exist_ok=True)
    (photos / "a.png").write_bytes(b"")  # never read: the weights are checked first
    return subprocess.run(
        [sys.executable, SCRIPT, str(photos), "-o", str(tmp_path / "tokens"), "--model", "deit_tiny_patch16_224",
         "--weights", str(weights), "--layer", "-2"],
        capture_output=True, text=True, timeout=120,
    )


@pytest.mark.parametrize("case", ["missing", "directory", "not safetensors"])
def test_unusable_weights(tmp_path, case):
    weights = {"missing": tmp_path / "no" / "deit.safetensors", "directory": tmp_path,
               "not safetensors": tmp_path / "bad.safetensors"}[case]
    if case == "not safetensors":
        weights.write_bytes(os.urandom(256))
    r = run_dump(tmp_path, weights)
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr, r.stderr
    assert str(weights) in r.stderr and "--weights" in r.stderr, r.stderr
    assert "huggingface.co" in r.stderr, r.stderr  # says where to get weights
    assert not (tmp_path / "tokens").exists(), "work started before the weights were checked"
