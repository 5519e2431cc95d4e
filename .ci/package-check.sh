#!/usr/bin/env bash
# Package check (issue 15, item 5): `dotnet pack` of the solution into a temporary local folder feed (GpuNet.Kernels,
# GpuNet.Engine, GpuNet.Tool at a unique prerelease version, so no stale copy in the NuGet cache is used); a copy of
# .ci/package-sample/ outside the repository (the repository's Directory.*.props do not reach it) restores
# GpuNet.Engine from that feed (plus nuget.org for third-party packages: no other network), trains digits-mlp
# through the library API and fails below an accuracy floor, exports the model as ONNX and runs it in ONNX Runtime
# (Microsoft.ML.OnnxRuntime from nuget.org), failing when its logits differ from GpuNet's; then the tool is installed into a temporary tool path
# and `gpunet devices` and `gpunet train digits-mlp --epochs 2 --quiet` run. Exit 0 when everything passed.
# Usage: bash .ci/package-check.sh [--keep]   (--keep leaves the temporary directory for inspection)
# Measured 2026-12-03 with `time bash .ci/package-check.sh` on the shared 2-core build machine (three other helpers
# building and testing at the same time), two runs: 353 s and 186 s wall, 55-56 s user CPU. Of the 186 s run: pack
# 154 s, sample restore + build + 5 epochs 19 s, tool install 7 s, `gpunet devices` 2 s, `gpunet train digits-mlp
# --epochs 2` 4 s (the 353 s run spent 224 s packing and 80 s in that train: the load varies).
# GpuNet.Tool is about 90 MB (SkiaSharp's native libraries for every platform, through ScottPlot).
set -euo pipefail
cd "$(dirname "$0")/.."
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
keep=0; [ "${1:-}" = "--keep" ] && keep=1
start=$(date +%s)
version="0.1.0-check.$(date -u +%Y%m%d%H%M%S).$$"
tmp=$(mktemp -d -t gpunet-package-check-XXXXXX)
packages="${NUGET_PACKAGES:-$HOME/.nuget/packages}"
cleanup() {
  # the unique version's copies in the global package cache, and the temporary directory
  for id in gpunet.kernels gpunet.engine gpunet.tool; do rm -rf "${packages:?}/$id/$version"; done
  if [ "$keep" -eq 1 ]; then echo "package-check: kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
step() { echo "package-check: $* ($(($(date +%s) - start)) s)"; }

feed="$tmp/feed"
step "dotnet pack, version $version, into $feed"
dotnet pack GpuNet.sln -c Release -o "$feed" -p:Version="$version" -p:ContinuousIntegrationBuild=true
for id in GpuNet.Kernels GpuNet.Engine GpuNet.Tool; do
  if [ ! -f "$feed/$id.$version.nupkg" ]; then echo "package-check: FAIL: $id.$version.nupkg was not produced" >&2; exit 1; fi
done

step "sample project on the packed GpuNet.Engine"
cp -r .ci/package-sample "$tmp/sample"
cat > "$tmp/NuGet.config" <<EOF
<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <packageSources>
    <clear />
    <add key="gpunet-local" value="$feed" />
    <add key="nuget.org" value="https://api.nuget.org/v3/index.json" />
  </packageSources>
</configuration>
EOF
(cd "$tmp/sample" && dotnet run -c Release -p:GpuNetVersion="$version" -- 5 0.90)

step "dotnet tool install GpuNet.Tool into $tmp/tool"
(cd "$tmp" && dotnet tool install --tool-path "$tmp/tool" --add-source "$feed" GpuNet.Tool --version "$version")
step "gpunet devices"
"$tmp/tool/gpunet" devices
step "gpunet train digits-mlp --epochs 2 --quiet"
"$tmp/tool/gpunet" train digits-mlp --epochs 2 --quiet --device cpu
step "passed"
