"""The native decoder (libntcb.so, cmd/libntcb) against the pure-Python one.

Skipped where the library is not built (scripts/build-python.sh), unless
NTCB_DECODER=native, as in CI, where its absence fails. The fork tests run
in a fresh interpreter each (a subprocess), since this one has loaded the
library, with timeouts so that a hang fails instead of stalling.
"""

import glob
import os
import sys
import threading

import childproc
import numpy as np
import pytest

import ntcb
from ntcb import _native

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
GOLDEN = os.path.join(ROOT, "testdata", "golden")
GOLDEN_FILES = sorted(glob.glob(os.path.join(GOLDEN, "*.ntcb")) + glob.glob(os.path.join(GOLDEN, "compat", "*.ntcb")))
EXACT = {"fp16", "int8", "fp8", "int4"}

if not os.path.exists(_native.library_path()) and _native.mode() != "native":
    pytest.skip(f"the native decoder is not built ({_native.library_path()}; scripts/build-python.sh)",
                allow_module_level=True)


def name_of(path):
    return os.path.basename(path)[: -len(".ntcb")]


def test_loads():
    assert ntcb.open(os.path.join(GOLDEN, "int8.ntcb"), decoder="native").decoder == "native"
    assert ntcb.open(os.path.join(GOLDEN, "int8.ntcb"), decoder="python").decoder == "python"
    assert _native.loaded()


@pytest.mark.parametrize("path", GOLDEN_FILES, ids=name_of)
def test_native_matches_python_and_go(path):
    """Both decoders reproduce what the Go reader decodes (the .decoded.npy
    beside each golden file): bit for bit for the fixed codecs, within the
    learned codec's documented rounding for ntc; the native decoder, being
    the Go reader, bit for bit for all."""
    want = np.load(path.replace(".ntcb", ".decoded.npy"))
    nat = ntcb.open(path, decoder="native")
    py = ntcb.open(path, decoder="python")
    n = len(nat)
    idx = [n - 1, 0, n // 2, 0]
    got_n = nat.read(range(n))
    np.testing.assert_array_equal(got_n.view(np.uint32), want.view(np.uint32))
    np.testing.assert_array_equal(nat.read(idx), want[idx])
    for i in idx:
        np.testing.assert_array_equal(nat[i], want[i])
    got_p = py.read(range(n))
    if name_of(path) in EXACT:
        np.testing.assert_array_equal(got_p.view(np.uint32), got_n.view(np.uint32))
    else:
        rel = (np.abs(got_p - got_n).max(-1) / (np.linalg.norm(got_n, axis=-1) + 1e-6)).max()
        assert rel < 1e-3
    nat.verify()
    for i in range(nat.num_chunks):
        np.testing.assert_array_equal(nat.read_chunk(i), py.read_chunk(i) if name_of(path) in EXACT else nat.read_chunk(i))


@pytest.mark.parametrize("dtype", [np.float16, np.float64])
def test_dtypes(dtype):
    path = os.path.join(GOLDEN, "ntc.ntcb")
    want = np.load(path.replace(".ntcb", ".decoded.npy"))
    r = ntcb.open(path, dtype=dtype, decoder="native")
    got = r.read([1, 0])
    assert got.dtype == dtype
    np.testing.assert_array_equal(got, want[[1, 0]].astype(dtype))  # float16: rounded to nearest even, as numpy does
    assert r[2].dtype == dtype


def test_from_bytes_and_metadata():
    path = os.path.join(GOLDEN, "int4.ntcb")
    with open(path, "rb") as f:
        data = f.read()
    r = ntcb.Reader.from_bytes(data, decoder="native")
    np.testing.assert_array_equal(r.read(range(len(r))), np.load(path.replace(".ntcb", ".decoded.npy")))
    h = r._handle()
    assert h.shape() == r.shape
    assert h.metadata() == bytes(r._c.metadata)
    assert [h.key(i) for i in range(len(r))] == r.keys()
    assert h.lookup(r.keys()[1]) == 1
    with pytest.raises(ntcb.NotFound):
        h.lookup("no such key")
    with pytest.raises(ValueError):
        h.key(len(r))


def test_open_path_errors(tmp_path):
    lib = _native.load(required=True)
    with pytest.raises(FileNotFoundError):
        _native.Handle(lib, path=str(tmp_path / "nope.ntcb"))
    p = tmp_path / "x.ntcb"
    p.write_bytes(b"PK\x03\x04" + b"\0" * 200)
    with pytest.raises(ntcb.BadMagic) as e:
        _native.Handle(lib, path=str(p))
    assert str(p) in str(e.value)
    h = _native.Handle(lib, path=os.path.join(GOLDEN, "fp8.ntcb"))
    out = np.empty((1,) + h.shape()[1:], np.float32)
    with pytest.raises(ValueError):
        h.read([h.shape()[0]], out)
    with pytest.raises(ValueError):
        h.read([0, 1], out)  # the buffer holds one sample
    h.close()
    with pytest.raises(ValueError):
        h.read([0], out)


def test_threads_decode_concurrently():
    """Several threads share one reader; each gets the right samples."""
    path = os.path.join(GOLDEN, "ntc.ntcb")
    want = np.load(path.replace(".ntcb", ".decoded.npy"))
    r = ntcb.open(path, decoder="native")
    errors = []

    def work(t):
        try:
            for k in range(30):
                i = (t * 5 + k * 3) % len(r)
                np.testing.assert_array_equal(r[i], want[i])
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    ts = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors, errors


def test_decoding_releases_the_gil():
    """While one thread is inside a native read, another runs Python code.

    With the switch interval raised out of reach, a thread gives up the GIL
    only where it blocks or calls a C function that releases it. Thread A
    reads in a loop until it sees the flag that the main thread sets; the
    main thread can run (and set it) only while A is inside the library
    with the GIL released. Were the GIL held there, A would run all its
    reads first. (Each read is a few milliseconds, so that the main thread,
    woken when A releases the GIL, takes it before A's read returns.)"""
    r = ntcb.open(os.path.join(GOLDEN, "ntc.ntcb"), decoder="native")
    idx = list(range(len(r))) * 50
    r.read(idx)  # load, open and decode outside the measurement
    flag = threading.Event()
    seen = []
    reads = 3000

    def reader():
        for k in range(reads):
            if flag.is_set():
                seen.append(k)
                return
            r.read(idx)
        seen.append(None)

    old = sys.getswitchinterval()
    sys.setswitchinterval(1000)
    try:
        a = threading.Thread(target=reader)
        a.start()
        flag.set()
        a.join()
    finally:
        sys.setswitchinterval(old)
    assert seen and seen[0] is not None and seen[0] < reads, seen


MP_CHILD = """
import multiprocessing as mp, os, sys
import numpy as np
import ntcb
from ntcb import _native

PATH = {path!r}

def work(q):
    try:
        r = ntcb.open(PATH)
        q.put(("ok", float(r.read(range(len(r))).sum()), r.decoder))
    except BaseException as e:
        q.put(("error", type(e).__name__, str(e)))

if __name__ == "__main__":
    method, parent_reads = sys.argv[1], sys.argv[2] == "1"
    want = None
    if parent_reads:
        r = ntcb.open(PATH)
        want = float(r.read(range(len(r))).sum())
        assert _native.loaded()
    else:
        r = ntcb.open(PATH)  # opening does not load the library
        assert not _native.loaded()
    ctx = mp.get_context(method)
    q = ctx.Queue()
    p = ctx.Process(target=work, args=(q,))
    p.start()
    p.join(60)
    if p.is_alive():
        p.kill()
        print("HANG")
        sys.exit(3)
    res = q.get(timeout=10)
    print(repr(res))
    if want is not None and res[0] == "ok":
        assert res[1] == want
"""


@pytest.mark.parametrize("method", ["fork", "forkserver", "spawn"])
@pytest.mark.parametrize("parent_reads", [False, True])
def test_multiprocessing_children(method, parent_reads, tmp_path):
    """A child process decodes natively under every start method, except a
    forked child of a parent that had loaded the library: that one gets
    ForkError naming forkserver, and does not hang."""
    script = tmp_path / "child.py"
    script.write_text(MP_CHILD.format(path=os.path.join(GOLDEN, "ntc.ntcb")))
    rc, out = childproc.run([str(script), method, "1" if parent_reads else "0"], NTCB_DECODER="native")
    assert rc == 0, out
    if method == "fork" and parent_reads:
        assert "('error', 'ForkError'" in out and "forkserver" in out, out
    else:
        assert "('ok'," in out and "'native')" in out, out


def test_fallback_warns_once(tmp_path):
    """Without the library, the Python decoder reads, after one warning
    that names the cost; NTCB_DECODER=native makes it an error."""
    code = f"""
import warnings, ntcb
warnings.simplefilter("always")
with warnings.catch_warnings(record=True) as w:
    r = ntcb.open({os.path.join(GOLDEN, "int8.ntcb")!r})
    r[0]; r[1]; ntcb.open({os.path.join(GOLDEN, "fp8.ntcb")!r})[0]
    assert r.decoder == "python"
msgs = [str(x.message) for x in w if issubclass(x.category, RuntimeWarning)]
assert len(msgs) == 1 and "slower" in msgs[0] and "does not exist" in msgs[0], msgs
print("ok")
"""
    none = str(tmp_path / "none.so")
    rc, out = childproc.run(["-c", code], NTCB_LIBRARY=none, NTCB_DECODER="auto")
    assert rc == 0 and "ok" in out, out
    int8 = os.path.join(GOLDEN, "int8.ntcb")
    rc, out = childproc.run(["-c", f"import ntcb; ntcb.open({int8!r})[0]"], NTCB_LIBRARY=none, NTCB_DECODER="native")
    assert rc != 0 and "NativeUnavailable" in out, out
    rc, out = childproc.run(["-W", "error::RuntimeWarning", "-c", f"import ntcb; r = ntcb.open({int8!r}); r[0]; print(r.decoder)"],
                            NTCB_LIBRARY=none, NTCB_DECODER="python")
    assert rc == 0 and out.strip() == "python", out


def test_cuda_build_chosen_only_where_torch_has_cuda(monkeypatch, tmp_path):
    """The CUDA build exits the process where the driver cannot start, so it
    is chosen only where torch has initialised CUDA (never in a worker that
    has not, nor on a machine without a GPU)."""
    cuda = tmp_path / "libntcb_cuda.so"
    cuda.write_bytes(b"")
    monkeypatch.setenv("NTCB_CUDA_LIBRARY", str(cuda))
    monkeypatch.setattr(_native, "_cuda_initialised", lambda: False)
    assert _native.choose_library() == _native.library_path()
    monkeypatch.setattr(_native, "_cuda_initialised", lambda: True)
    assert _native.choose_library() == str(cuda)
    monkeypatch.setenv("NTCB_CUDA", "0")
    assert _native.choose_library() == _native.library_path()
    monkeypatch.delenv("NTCB_CUDA")
    cuda.unlink()
    assert _native.choose_library() == _native.library_path()
    # Here (no GPU) the loaded library is the CPU build, whatever is built.
    ntcb.open(os.path.join(GOLDEN, "int8.ntcb"), decoder="native")[0]
    assert not _native.has_cuda()


@pytest.mark.parametrize("name", ["ntc", "int4", "fp8", "int8"])
def test_damage_same_error_class_from_both_decoders(name):
    """Random changes inside chunk payloads, with the CRCs fixed up: the two
    decoders agree on whether each file decodes, and raise the same
    NtcbError class, naming the file's chunk. (Not fp16: its zstd frames
    carry no checksum, and Go's zstd decoder refuses some damaged frames
    that libzstd, under the Python decoder, decodes to other values.)"""
    from test_hostile import golden_bytes, recrc_chunk

    good = golden_bytes(name)
    c = ntcb.Reader.from_bytes(good, decoder="python")._c
    rng = np.random.default_rng(11)
    disagree, errors = [], 0
    for trial in range(60):
        ch = c.chunks[trial % len(c.chunks)]
        b = bytearray(good)
        for _ in range(1 + trial % 3):
            b[ch.offset + 8 + int(rng.integers(0, ch.length))] ^= int(rng.integers(1, 256))
        recrc_chunk(b, c, trial % len(c.chunks))
        got = []
        for dec in ("python", "native"):
            try:
                r = ntcb.Reader.from_bytes(bytes(b), decoder=dec)
                r.read(range(len(r)))
                got.append(None)
            except ntcb.NtcbError as e:
                got.append(type(e))
                assert "chunk" in str(e), str(e)
        errors += got[0] is not None
        if got[0] != got[1]:
            disagree.append((trial, got))
    assert errors > 0
    assert not disagree, disagree


def test_model_by_reference_given_to_the_library(tmp_path):
    """A file that holds its model by reference (ntc encode --model): the
    library refuses it with ExternalModel until it is given the blob, then
    decodes it as the file with the model stored (--embed-model)."""
    import shutil
    import subprocess

    go = shutil.which("go") or ("/usr/local/go/bin/go" if os.path.exists("/usr/local/go/bin/go") else None)
    sample = os.path.join(ROOT, "internal", "sample", "deit_tiny_block10_8.npy")
    if go is None or not os.path.exists(sample):
        pytest.skip("needs the Go toolchain and the embedded sample")
    ntc = str(tmp_path / "ntc")
    subprocess.run([go, "build", "-o", ntc, "./cmd/ntc"], cwd=ROOT, check=True,
                   env=dict(os.environ, GOFLAGS="-buildvcs=false"))
    m, f = str(tmp_path / "m.ntcm"), str(tmp_path / "x.ntcb")
    subprocess.run([ntc, "fit", sample, "-o", m, "-q"], check=True)
    subprocess.run([ntc, "encode", sample, "-o", f, "-q", "--model", m], check=True)
    emb = str(tmp_path / "embedded.ntcb")
    subprocess.run([ntc, "encode", sample, "-o", emb, "-q", "--model", m, "--embed-model"], check=True)
    r = ntcb.open(f, decoder="python")
    ext = [x for x in r._c.models if x.external]
    assert ext, "the file holds its model by reference"
    want = ntcb.open(emb, decoder="native").read(range(len(r)))
    lib = _native.load(required=True)
    h = _native.Handle(lib, path=f)
    out = np.empty(want.shape, np.float32)
    with pytest.raises(ntcb.ExternalModel):
        h.read(range(len(r)), out)
    with open(m, "rb") as fh:
        blob = ntcb.container.Container.from_bytes(fh.read()).read_model(ext[0].codec)
    h.add_model(ext[0].codec, blob)
    h.read(range(len(r)), out)
    np.testing.assert_array_equal(out, want)
    h.close()


def test_source_read_through_callback():
    """A source that is not a local file (a remote file: size and read_at)
    is read by the library through a callback, from the calling thread; a
    failure of the source's read is raised as itself."""
    from ntcb.container import Container

    path = os.path.join(GOLDEN, "ntc.ntcb")
    with open(path, "rb") as f:
        data = f.read()

    class Source:
        path, size, reads, fail = "mem://ntc.ntcb", len(data), [], False

        def read_at(self, n, off):
            if self.fail:
                raise ConnectionError("the network went away")
            self.reads.append((n, off))
            return data[off : off + n]

        def close(self):
            pass

    src = Source()
    r = ntcb.Reader(None, decoder="native", _container=Container(_src=src))
    before = len(src.reads)
    np.testing.assert_array_equal(r.read([7, 0]), np.load(path.replace(".ntcb", ".decoded.npy"))[[7, 0]])
    assert r.decoder == "native" and len(src.reads) > before
    src.fail = True
    with pytest.raises(ConnectionError):
        r[3]
