#!/usr/bin/env bash
# Installs what the CUDA build of ntc (-tags cuda, pkg/cuda) needs to COMPILE
# on a machine without CUDA: the CUDA 11.8 headers and link stubs, taken from
# Debian 12's non-free package nvidia-cuda-dev. Nothing from that package is
# ever run; the binary built against it runs on a GPU machine with a CUDA 13
# driver and libcublas.so.13.
#
# Usage:
#   scripts/cuda-deps.sh              install if needed, print the build env
#   eval "$(scripts/cuda-deps.sh)"    ... and use it in this shell
#
# It installs into ${NTC_CUDA_ROOT:-/opt/ntc-cuda}:
#   include/          the CUDA 11.8 headers (cuda.h, cublas_v2.h, ...)
#   lib/libcuda.so    the driver stub as shipped (SONAME libcuda.so.1)
#   lib/libcublas.so  a stub WITHOUT symbol versions and with SONAME
#                     libcublas.so.13: Debian's own stub versions its symbols
#                     (cublasCreate_v2@libcublas.so.11), and a binary linked
#                     against it would not load CUDA 13's libcublas.so.13
#   .ntc-cuda-deps    a stamp; when it matches this script's, nothing is done
# The package is fetched with a private apt configuration (its own sources
# list, lists and cache in a temporary folder, only Debian bookworm non-free),
# so the machine's apt sources are left as they are; apt still checks the
# package's hash against Debian's signed index. The ~775 MB .deb is deleted
# once the ~16 MB that are kept are unpacked.
#
# Progress goes to stderr; stdout carries only the export lines:
#   export CGO_ENABLED=1 CGO_CFLAGS='-O2 -g -I<root>/include' CGO_LDFLAGS='-O2 -g -L<root>/lib'
# Needs: apt-get, dpkg-deb, tar, nm, gcc, Debian's archive keyring; amd64.
# Writing the default root needs root (or sudo).
#
# Environment: NTC_CUDA_ROOT (install root), NTC_DEBIAN_MIRROR (default
# http://deb.debian.org/debian).
set -euo pipefail

ROOT="${NTC_CUDA_ROOT:-/opt/ntc-cuda}"
MIRROR="${NTC_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
SUITE=bookworm # CUDA 11.8; trixie's 12.4 also compiles, CUDA 13's headers do not
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
# Bump when the layout or the stubs change: an older install is then redone.
STAMP="ntc-cuda-deps 1: nvidia-cuda-dev from $SUITE; stubs libcuda.so.1 libcublas.so.13"

say() { echo "cuda-deps: $*" >&2; }
die() { say "error: $*"; exit 1; }

# quote: single-quoted for the shell.
quote() { printf "'%s'" "${1//\'/\'\\\'\'}"; }
print_env() {
  echo "export CGO_ENABLED=1 CGO_CFLAGS=$(quote "-O2 -g -I$ROOT/include") CGO_LDFLAGS=$(quote "-O2 -g -L$ROOT/lib")"
}

installed() {
  [ -f "$ROOT/.ntc-cuda-deps" ] && [ "$(cat "$ROOT/.ntc-cuda-deps")" = "$STAMP" ] &&
    [ -f "$ROOT/include/cuda.h" ] && [ -f "$ROOT/include/cublas_v2.h" ] &&
    [ -f "$ROOT/lib/libcuda.so" ] && [ -f "$ROOT/lib/libcublas.so" ]
}

if installed; then
  say "already installed in $ROOT"
  print_env
  exit 0
fi

[ "$(dpkg --print-architecture 2>/dev/null)" = amd64 ] || die "only amd64 is supported"
for tool in apt-get dpkg-deb tar nm gcc; do
  command -v "$tool" >/dev/null || die "$tool not found"
done
[ -f "$KEYRING" ] || die "$KEYRING not found (package debian-archive-keyring)"

# Refuse to replace a folder this script did not make.
if [ -e "$ROOT" ] && [ ! -f "$ROOT/.ntc-cuda-deps" ]; then
  die "$ROOT exists and was not made by this script; remove it or set NTC_CUDA_ROOT"
fi
parent=$(dirname "$ROOT")
SUDO=""
if [ "$(id -u)" -ne 0 ] && ! { mkdir -p "$parent" 2>/dev/null && [ -w "$parent" ]; }; then
  command -v sudo >/dev/null || die "cannot write $parent; run as root or set NTC_CUDA_ROOT"
  SUDO=sudo
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/ntc-cuda-deps.XXXXXX")
trap 'rm -rf "$work"' EXIT

say "fetching nvidia-cuda-dev ($SUITE non-free, $MIRROR)"
mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/parts" "$work/deb"
echo "deb [signed-by=$KEYRING] $MIRROR $SUITE non-free" >"$work/sources.list"
apt_private=(
  -o "Dir::Etc::SourceList=$work/sources.list"
  -o "Dir::Etc::SourceParts=$work/parts"
  -o "Dir::State::Lists=$work/lists"
  -o "Dir::Cache=$work/cache"
  -o "APT::Sandbox::User=root" # the temporary folder is not readable by _apt
)
apt-get -qq "${apt_private[@]}" update >&2
(cd "$work/deb" && apt-get -q "${apt_private[@]}" download nvidia-cuda-dev >&2)
deb=$(ls "$work"/deb/nvidia-cuda-dev_*.deb 2>/dev/null | head -n1)
[ -n "$deb" ] || die "apt-get download produced no nvidia-cuda-dev .deb"
say "unpacking headers and stubs of $(basename "$deb")"
mkdir -p "$work/x"
dpkg-deb --fsys-tarfile "$deb" |
  tar -x -C "$work/x" --wildcards './usr/include/*' './usr/lib/x86_64-linux-gnu/stubs/*'
rm -f "$deb"

stubs="$work/x/usr/lib/x86_64-linux-gnu/stubs"
stage="$work/stage"
mkdir -p "$stage/lib"
mv "$work/x/usr/include" "$stage/include"
[ -f "$stage/include/cuda.h" ] && [ -f "$stage/include/cublas_v2.h" ] ||
  die "the package has no cuda.h or cublas_v2.h"
version=$(awk '$1=="#define" && $2=="CUDA_VERSION" {print $3; exit}' "$stage/include/cuda.h")
say "CUDA_VERSION $version"
case "$version" in
  11[0-9][0-9][0-9] | 12[0-9][0-9][0-9]) ;;
  *) die "unexpected CUDA_VERSION '$version' (gorgonia.org/cu v0.9.6 needs headers of CUDA 11 or 12)" ;;
esac
cp -L "$stubs/libcuda.so" "$stage/lib/libcuda.so"
# Every function the versioned stub defines, as an empty function in an
# unversioned library with CUDA 13's SONAME. It is only linked against.
nm -D --defined-only --format=posix "$stubs/libcublas.so" |
  awk '$2=="T" {sub(/@.*/, "", $1); print "void " $1 "(void){}"}' | sort -u >"$work/libcublas.c"
[ -s "$work/libcublas.c" ] || die "no functions found in Debian's libcublas stub"
gcc -shared -fPIC -nostdlib -Wl,-soname,libcublas.so.13 -o "$stage/lib/libcublas.so" "$work/libcublas.c"
echo "$STAMP" >"$stage/.ntc-cuda-deps"

say "installing into $ROOT"
$SUDO mkdir -p "$parent"
$SUDO rm -rf "$ROOT"
$SUDO cp -R "$stage" "$ROOT"
$SUDO chmod -R a+rX "$ROOT"
installed || die "install into $ROOT failed"
say "done"
print_env
