#!/usr/bin/env bash
# Fetches NVIDIA's ptxas (CUDA 11.8, from Debian's non-free nvidia-cuda-toolkit .deb) into .tools/cuda without
# installing anything system-wide, and prints the path of the ptxas binary. See shared/notes/gpu-toolchain.md.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dest="$root/.tools/cuda"
ptxas="$dest/usr/bin/ptxas"
if [ -x "$ptxas" ] && "$ptxas" --version >/dev/null 2>&1; then echo "$ptxas"; exit 0; fi
d=$(mktemp -d); trap 'rm -rf "$d"' EXIT
mkdir -p "$d/lists/partial" "$d/parts"
src=/etc/apt/sources.list.d/debian.sources
# first stanza only (the main archive), with the non-free component
awk 'BEGIN{RS=""; ORS="\n\n"} NR==1' "$src" | sed 's/^Components:.*/Components: non-free/' > "$d/parts/nf.sources"
opts=(-o Dir::Etc::SourceList=/dev/null -o Dir::Etc::SourceParts="$d/parts" -o Dir::State::Lists="$d/lists")
apt-get update -qq "${opts[@]}" >&2
(cd "$d" && apt-get download -qq "${opts[@]}" nvidia-cuda-toolkit >&2)
mkdir -p "$dest.tmp"
dpkg-deb -x "$d"/nvidia-cuda-toolkit_*.deb "$dest.tmp"
rm -rf "$dest"; mv "$dest.tmp" "$dest"
"$ptxas" --version >&2
echo "$ptxas"
