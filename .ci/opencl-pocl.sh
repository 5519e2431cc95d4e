#!/usr/bin/env bash
# Run a command where a real OpenCL 3.0 runtime with generic address space exists: PoCL 6.0's CPU device.
#
# Debian 12's PoCL (3.1) lacks the generic address space that ILGPU's OpenCL backend needs, and Debian 13's PoCL
# (6.0) needs glibc 2.38, so this builds a small Debian 13 root file system once (debootstrap, about 1 minute),
# installs pocl-opencl-icd there, and runs the command inside it (chroot in a private mount namespace), with the
# current directory, the .NET SDK and the NuGet cache bound in at the same paths. Needs root (CI and sessions are).
#
#   usage: .ci/opencl-pocl.sh [--root DIR] -- COMMAND [ARGS...]
#   e.g.   .ci/opencl-pocl.sh -- dotnet test -c Release --no-build -- --filter-trait "Backend=opencl"
#
# The root defaults to $POCL_ROOT or this repository's .tools/pocl-root (gitignored; a second run reuses it). Inside
# it, `clinfo` shows the device ("cpu-...", OpenCL 3.0 PoCL, generic address space: Yes) and ILGPU lists it as an
# OpenCL device of CPU type. The environment passes through (GPUNET_*, CI); /tmp inside is a fresh tmpfs, so write
# outputs under the current directory. If the root cannot be built the script exits non-zero with a message saying so.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
root="${POCL_ROOT:-$repo/.tools/pocl-root}"
if [ "${1:-}" = "--root" ]; then root="$2"; shift 2; fi
[ "${1:-}" = "--" ] && shift
[ $# -gt 0 ] || { echo "usage: $0 [--root DIR] -- COMMAND [ARGS...]" >&2; exit 2; }

if [ ! -e "$root/.pocl-ready" ]; then
  echo "opencl-pocl: building a Debian 13 root with PoCL 6.0 in $root (once)" >&2
  fail() { echo "opencl-pocl: could not build the PoCL root in $root: $1 (needs root, apt and http://deb.debian.org)" >&2; exit 3; }
  [ "$(id -u)" -eq 0 ] || fail "not running as root"
  command -v debootstrap >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap; } >&2 \
    || fail "installing debootstrap failed"
  rm -rf "$root"; mkdir -p "$root"
  debootstrap --variant=minbase trixie "$root" http://deb.debian.org/debian >&2 || fail "debootstrap failed"
  cp /etc/resolv.conf "$root/etc/resolv.conf"
  chroot "$root" bash -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pocl-opencl-icd ocl-icd-libopencl1 clinfo libicu76 ca-certificates' >&2 \
    || fail "installing pocl-opencl-icd in the root failed"
  # ILGPU loads "libOpenCL.so"; the runtime package only ships the versioned name.
  ln -sf libOpenCL.so.1 "$root/usr/lib/x86_64-linux-gnu/libOpenCL.so"
  touch "$root/.pocl-ready"
fi

dotnet_dir="$(dirname "$(readlink -f "$(command -v dotnet)")")"
nuget="${NUGET_PACKAGES:-$HOME/.nuget/packages}"
work="$PWD"
data="${GPUNET_DATA:-$HOME/.cache/gpunet}"
mkdir -p "$nuget" "$data"
# A private mount namespace: every bind below disappears when the command ends, whatever happens.
exec unshare -m bash -c '
  set -e; r="$1"; d="$2"; n="$3"; w="$4"; g="$5"; shift 5
  mkdir -p "$r/tmp"; mount -t tmpfs tmpfs "$r/tmp"
  mount -t proc proc "$r/proc"; mount -t sysfs sys "$r/sys"; mount --bind /dev "$r/dev"
  for p in "$d" "$n" "$g" "$w"; do mkdir -p "$r$p"; mount --bind "$p" "$r$p"; done
  ln -sf "$d/dotnet" "$r/usr/local/bin/dotnet"
  exec chroot "$r" env HOME="$HOME" NUGET_PACKAGES="$n" PATH="/usr/local/bin:/usr/bin:/bin" \
    DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 GPUNET_DATA="$g" CI="${CI:-}" \
    bash -c "cd \"\$0\" && exec \"\$@\"" "$w" "$@"
' _ "$root" "$dotnet_dir" "$nuget" "$work" "$data" "$@"
