#!/bin/bash
# Pack kvlab's GPU checks for a machine that has a GPU but no Node, no npm and no network
# (e.g. a lent CUDA box): Node 24's binary, Dawn's dawn.node for linux-x64, esbuild bundles of
# the CLI, bench/gpu-attention.ts and the executor test suites, build/kvlab.wasm, the Vulkan/EGL
# loader packages, and the shared reference material. Then `bash <out>/run.sh` there (from the
# directory that holds <out>, see run.sh).
#
#   bash tools/gpu-check/prepare.sh [out-dir, default tmp/gpu]
#
# Needs a checkout with `npm ci` done. Ends by loading every bundle from a copy outside the
# checkout, so a module that only resolves inside it (a first try missed @resvg/resvg-js this
# way and lost its GPU run) fails here, not on the GPU machine.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${1:-tmp/gpu}
SHARED=${KVLAB_SHARED:-$ROOT/../shared}
cd "$ROOT"
rm -rf "$OUT" && mkdir -p "$OUT"/{a/b,build,.gl,node_modules/webgpu/dist/linux-x64,node_modules/@resvg/resvg-js}
OUT=$(cd "$OUT" && pwd)

echo "node 24 binary"
NODE24=$(npx -y -p node@24 node -e 'process.stdout.write(process.execPath)')
xz -T0 -6 -c "$NODE24" > "$OUT/node24.xz"

echo "Dawn (webgpu package, linux-x64 only)"
cp node_modules/webgpu/index.js node_modules/webgpu/package.json "$OUT/node_modules/webgpu/"
xz -T0 -6 -c node_modules/webgpu/dist/linux-x64/dawn.node > "$OUT/dawn.node.xz"
# resvg is native and only draws PNGs; a stub keeps the CLI loadable without it.
echo '{"name":"@resvg/resvg-js","version":"0.0.0-stub","type":"module","main":"index.js"}' \
  > "$OUT/node_modules/@resvg/resvg-js/package.json"
echo 'export class Resvg { constructor() { throw new Error("@resvg/resvg-js is a stub here: no PNG export"); } }' \
  > "$OUT/node_modules/@resvg/resvg-js/index.js"

echo "bundles"
npm run -s asbuild
cp build/kvlab.wasm "$OUT/build/"
ENTRIES=(cli=src/cli.ts gpu-attention=bench/gpu-attention.ts)
for f in test/gpu/*.test.ts test/cache/policies/executors.test.ts test/cache/attend.prop.test.ts \
  test/quant/codec-contract.prop.test.ts test/kernels/fallbacks.test.ts test/cache/memory.test.ts \
  test/cache/head-store.test.ts test/cache/stats.test.ts; do
  [ -f "$f" ] && ENTRIES+=("t-$(echo "$f" | sed 's#^test/##; s#/#-#g; s#\.ts$##')=$f")
done
# Bundles sit two folders below $OUT so that the sources' "../../build/kvlab.wasm" and
# REPO_ROOT (src/experiment/paths.ts) resolve to $OUT.
npx esbuild --bundle --minify --keep-names --platform=node --format=esm --target=node20 \
  --external:webgpu --external:@resvg/resvg-js --log-level=warning \
  --banner:js="import{createRequire as __cr}from'module';const require=__cr(import.meta.url);" \
  --outdir="$OUT/a/b" --out-extension:.js=.mjs "${ENTRIES[@]}"
# The built-in model, texts and configs travel with the checkout; link to them.
REL=$(realpath --relative-to="$OUT" "$ROOT")
for d in models data experiments; do ln -sfn "$REL/$d" "$OUT/$d"; done

echo "shared reference material"
mkdir -p "$OUT/shared/models/stories260K" "$OUT/shared/data/wikitext-2-raw" "$OUT/shared/reference"
cp -r "$SHARED/models/stories260K/hf" "$SHARED/models/stories260K/stories260K.f32.gguf" "$OUT/shared/models/stories260K/"
cp "$SHARED/data/wikitext-2-raw/wiki.test.raw" "$OUT/shared/data/wikitext-2-raw/"
cp "$SHARED"/reference/*.json "$OUT/shared/reference/"

echo "Vulkan / EGL loaders (Debian packages, unpacked on the GPU machine)"
if command -v apt-get >/dev/null; then
  o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
  mkdir -p /tmp/amd64/partial
  apt-get $o update >/dev/null
  (cd "$OUT/.gl" && apt-get $o download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2 2>/dev/null)
fi
cp tools/gpu-check/run.sh "$OUT/run.sh"

echo "self-check: load the CLI from a copy outside the checkout"
T=$(mktemp -d)
cp -r "$OUT/a" "$OUT/node_modules" "$OUT/build" "$T/"
mkdir -p "$T/a" && xz -dc "$OUT/dawn.node.xz" > "$T/node_modules/webgpu/dist/linux-x64/dawn.node"
"$NODE24" "$T/a/b/cli.mjs" info --json > "$T/info.json"
"$NODE24" "$T/a/b/cli.mjs" synth-model --shape tiny --out "$T/tiny" > /dev/null
"$NODE24" "$T/a/b/cli.mjs" ppl --model "$T/tiny" --text "$ROOT/data/sotu/heldout.txt" --ctx 64 --chunks 1 --json > /dev/null
rm -rf "$T"
echo "ready: $(du -sh "$OUT" | cut -f1) in $OUT (+ the checkout: keep both under the device's transfer limit)"
