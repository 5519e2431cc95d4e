#!/usr/bin/env bash
# Puts the official onnx.proto (ONNX 1.12.0: IR 8, opsets up to 17) at .tools/onnx/onnx.proto, from Debian's
# libonnx-dev package (/usr/include/onnx/onnx.proto), without installing anything system-wide; prints its path.
# Engine.csproj runs this before the protobuf compile when the file is missing. The file is never committed.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
dest="$root/.tools/onnx"
proto="$dest/onnx.proto"
if [ -s "$proto" ]; then echo "$proto"; exit 0; fi
fail() { echo "fetch-onnx-proto.sh: $*" >&2; exit 1; }
command -v apt-get >/dev/null || fail "apt-get not found: get onnx.proto of ONNX 1.12 (onnx/onnx.proto) and put it at $proto"
command -v dpkg-deb >/dev/null || fail "dpkg-deb not found: put onnx.proto of ONNX 1.12 at $proto"
d=$(mktemp -d); trap 'rm -rf "$d"' EXIT
if ! (cd "$d" && apt-get download -qq libonnx-dev >&2 2>"$d/err"); then
    # no package index yet (a fresh container): refresh it once, which needs root
    [ "$(id -u)" = 0 ] || fail "apt-get download libonnx-dev failed ($(cat "$d/err")) and refreshing the index needs root; run 'sudo apt-get update' or put onnx.proto at $proto"
    apt-get update -qq >&2 || fail "apt-get update failed"
    (cd "$d" && apt-get download -qq libonnx-dev >&2) || fail "apt-get download libonnx-dev failed (Debian 12 or newer has it)"
fi
dpkg-deb -x "$d"/libonnx-dev_*.deb "$d/x" || fail "cannot unpack $(ls "$d"/libonnx-dev_*.deb)"
[ -s "$d/x/usr/include/onnx/onnx.proto" ] || fail "libonnx-dev has no usr/include/onnx/onnx.proto"
mkdir -p "$dest"
cp "$d/x/usr/include/onnx/onnx.proto" "$proto.tmp$$"
mv "$proto.tmp$$" "$proto"
echo "$proto"
