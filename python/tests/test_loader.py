"""torch DataLoader workers under the fork, forkserver and spawn start
methods, with whichever decoder this run uses (NTCB_DECODER; CI runs the
tests with both). Each case runs in a fresh interpreter, so that its parent
has not loaded the native decoder unless the case says so, with a timeout
so that a hang fails the test instead of stalling it. Skipped without torch.
"""

import os

import childproc
import pytest

from ntcb import _native

pytest.importorskip("torch")

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
GOLDEN = os.path.join(ROOT, "testdata", "golden")

SCRIPT = """
import sys
import numpy as np
import torch
import ntcb
from ntcb.torch_data import ChunkShuffleSampler, NtcbDataset


def main():
    method, parent_reads = sys.argv[1], sys.argv[2] == "1"
    paths = [{ntc!r}, {compat!r}]  # the same layout: batches stack
    want = np.concatenate([np.load(p.replace(".ntcb", ".decoded.npy")) for p in paths])
    ds = NtcbDataset(paths)
    if parent_reads:
        ds[0]
    loader = torch.utils.data.DataLoader(ds, batch_size=3, num_workers=2, multiprocessing_context=method,
                                         sampler=ChunkShuffleSampler(ds, seed=3), timeout=100)
    try:
        seen = {{}}
        for b in loader:
            for i, t in zip(b["index"].tolist(), b["tokens"]):
                seen[i] = t.numpy()
    except RuntimeError as e:
        print("ERROR", type(e).__name__, e)
        return
    assert sorted(seen) == list(range(len(ds))), sorted(seen)
    got = np.stack([seen[i] for i in range(len(ds))])
    rel = (np.abs(got - want).max(-1) / (np.linalg.norm(want, axis=-1) + 1e-6)).max()
    assert rel < 1e-3, rel
    print("OK", ntcb.open(paths[0]).decoder, len(ds))


if __name__ == "__main__":  # forkserver and spawn import this module
    main()
"""


def decoder_of_this_run():
    m = _native.mode()
    if m == "auto":
        return "native" if os.path.exists(_native.library_path()) else "python"
    return m


@pytest.mark.parametrize("method", ["fork", "forkserver", "spawn"])
@pytest.mark.parametrize("parent_reads", [False, True], ids=["lazy-parent", "parent-read"])
def test_dataloader_two_workers(method, parent_reads, tmp_path):
    script = tmp_path / "loader.py"
    script.write_text(SCRIPT.format(ntc=os.path.join(GOLDEN, "ntc.ntcb"), compat=os.path.join(GOLDEN, "compat", "ntc_payload_v4.ntcb")))
    rc, out = childproc.run([str(script), method, "1" if parent_reads else "0"])
    assert rc == 0, out
    native = decoder_of_this_run() == "native"
    if native and method == "fork" and parent_reads:
        # The workers were forked from a parent that had loaded the library.
        assert "ERROR" in out and "ForkError" in out and 'multiprocessing_context="forkserver"' in out, out
    else:
        assert f"OK {'native' if native else 'python'} 16" in out, out
