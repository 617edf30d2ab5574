"""The PEP 517 build backend of the ntcb Python package (pyproject.toml).

It needs nothing from a package index: no setuptools, no wheel, so that
``pip install ./python`` works offline and with build isolation. It builds
the native decoder (cmd/libntcb) with the Go toolchain into the wheel, as
``ntcb/libntcb.so``, and writes the wheel itself (a zip file with the
package and its dist-info).

The wheel is tagged ``py3-none-PLATFORM``: the library is loaded with
ctypes, so it serves every Python 3 of the platform. PLATFORM is
manylinux_2_X_ARCH, where 2.X is the newest glibc symbol version the
library needs, or $NTCB_WHEEL_PLATFORM when set. NTCB_NATIVE=0 builds a
pure-Python wheel (``py3-none-any``) that decodes with the reference
decoder. Go is found on PATH, at $NTCB_GO, or in /usr/local/go/bin; the
repository is the folder above this one (pip builds local folders in
place).
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
NAME = "ntcb"
LIBRARY = "libntcb.so"


def _version() -> str:
    with open(os.path.join(HERE, NAME, "__init__.py"), encoding="utf-8") as f:
        m = re.search(r'^__version__ = "([^"]+)"', f.read(), re.M)
    if not m:
        raise RuntimeError("ntcb/__init__.py has no __version__")
    return m.group(1)


def _native_wanted() -> bool:
    return os.environ.get("NTCB_NATIVE", "1") != "0"


def _go() -> str:
    for g in (os.environ.get("NTCB_GO"), shutil.which("go"), "/usr/local/go/bin/go"):
        if g and os.path.exists(g):
            return g
    raise RuntimeError("ntcb: building the native decoder needs the Go toolchain (go on PATH, or NTCB_GO=/path/to/go) "
                       "and a C compiler; NTCB_NATIVE=0 builds a pure-Python package instead (much slower decoding)")


def build_library(out: str, cuda: bool = False) -> str:
    """Builds cmd/libntcb as a C shared library at out (atomically) and
    returns out. The C header is left beside it as libntcb.h. With cuda,
    the CUDA build (tag cuda), with the cgo flags of scripts/cuda-deps.sh
    in the environment (scripts/build-python.sh --cuda sets them): it needs libcuda.so.1 and libcublas.so.13 where it
    runs, and exits the process where the CUDA driver cannot start."""
    if not os.path.isdir(os.path.join(ROOT, "cmd", "libntcb")):
        raise RuntimeError(f"ntcb: {ROOT} is not the ntc repository (no cmd/libntcb); build from a checkout")
    env = dict(os.environ, CGO_ENABLED="1")
    env["GOFLAGS"] = (env.get("GOFLAGS", "") + " -buildvcs=false").strip()
    tags = []
    if cuda:
        tags = ["-tags", "cuda,netgo,osusergo"]
    d = os.path.dirname(os.path.abspath(out))
    os.makedirs(d, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=d, prefix=".libntcb-") as tmp:
        lib = os.path.join(tmp, LIBRARY)
        cmd = [_go(), "build", *tags, "-buildmode=c-shared", "-trimpath", "-ldflags=-s -w", "-o", lib, "./cmd/libntcb"]
        subprocess.run(cmd, cwd=ROOT, env=env, check=True)
        os.replace(os.path.join(tmp, "libntcb.h"), os.path.join(d, "libntcb.h"))
        os.replace(lib, out)
    return out


def glibc_needed(path: str) -> tuple[int, int]:
    """The newest GLIBC_2.X symbol version that the library at path refers to."""
    with open(path, "rb") as f:
        data = f.read()
    vs = [(2, int(m.group(1))) for m in re.finditer(rb"GLIBC_2\.(\d+)", data)]
    return max(vs, default=(2, 17))


def platform_tag(lib: str | None) -> str:
    if lib is None:
        return "any"
    if os.environ.get("NTCB_WHEEL_PLATFORM"):
        return os.environ["NTCB_WHEEL_PLATFORM"]
    plat = sysconfig.get_platform().replace("-", "_").replace(".", "_")
    if plat.startswith("linux_"):
        major, minor = glibc_needed(lib)
        return f"manylinux_{major}_{minor}_{plat[len('linux_'):]}"
    return plat


def _metadata(version: str) -> str:
    return "\n".join([
        "Metadata-Version: 2.1",
        f"Name: {NAME}",
        f"Version: {version}",
        "Summary: Read .ntcb files (compressed vision-transformer tokens written by ntc) from Python",
        "Requires-Python: >=3.9",
        "Requires-Dist: numpy",
        "Provides-Extra: fp16",
        "Requires-Dist: zstandard; extra == \"fp16\"",
        "Provides-Extra: torch",
        "Requires-Dist: torch; extra == \"torch\"",
        "",
        "See docs/usage.md of the ntc repository.",
        "",
    ])


def _write_wheel(wheel_directory: str, files: dict[str, bytes], tag: str) -> str:
    version = _version()
    dist = f"{NAME}-{version}.dist-info"
    files = dict(files)
    files[f"{dist}/METADATA"] = _metadata(version).encode()
    files[f"{dist}/WHEEL"] = (f"Wheel-Version: 1.0\nGenerator: ntcb build_backend\n"
                              f"Root-Is-Purelib: {'true' if tag.endswith('-any') else 'false'}\nTag: {tag}\n").encode()
    files[f"{dist}/top_level.txt"] = f"{NAME}\n".encode()
    record = []
    for name, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(data)}")
    record.append(f"{dist}/RECORD,,")
    files[f"{dist}/RECORD"] = ("\n".join(record) + "\n").encode()
    name = f"{NAME}-{version}-{tag}.whl"
    os.makedirs(wheel_directory, exist_ok=True)
    tmp = os.path.join(wheel_directory, "." + name + ".tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
        for n in sorted(files):
            info = zipfile.ZipInfo(n, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = (0o755 if n.endswith(".so") else 0o644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, files[n])
    os.replace(tmp, os.path.join(wheel_directory, name))
    return name


def _package_files() -> dict[str, bytes]:
    files = {}
    pkg = os.path.join(HERE, NAME)
    for f in sorted(os.listdir(pkg)):
        if f.endswith(".py"):
            with open(os.path.join(pkg, f), "rb") as fh:
                files[f"{NAME}/{f}"] = fh.read()
    return files


# -- PEP 517 hooks -------------------------------------------------------------

def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_editable(config_settings=None):
    return []


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    """A wheel of the package with the native decoder built from this checkout."""
    files = _package_files()
    lib = None
    if _native_wanted():
        with tempfile.TemporaryDirectory() as tmp:
            lib = build_library(os.path.join(tmp, LIBRARY))
            with open(lib, "rb") as f:
                files[f"{NAME}/{LIBRARY}"] = f.read()
            tag = f"py3-none-{platform_tag(lib)}"
    else:
        tag = "py3-none-any"
    return _write_wheel(wheel_directory, files, tag)


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    """An editable install: a .pth file that puts this folder on sys.path,
    and the native decoder built in place (as scripts/build-python.sh)."""
    lib = None
    if _native_wanted():
        lib = build_library(os.path.join(HERE, NAME, LIBRARY))
    files = {f"__editable__.{NAME}.pth": (HERE + "\n").encode()}
    return _write_wheel(wheel_directory, files, f"py3-none-{platform_tag(lib)}")

