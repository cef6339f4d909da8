#!/bin/bash
# kvlab GPU checks on a machine with a GPU and no Node/npm/network, from tools/gpu-check/prepare.sh.
# Run from the directory above the prepared folder: bash tmp/gpu/run.sh (results go to $OUT or ./gpu-out).
set -u
cd "$(dirname "$0")"
OUT=${OUT:-$PWD/gpu-out}; mkdir -p "$OUT"
G=$PWD
START=$(date +%s)
el() { echo "[+$(( $(date +%s) - START ))s] $*"; }
for f in .gl/*.deb; do dpkg -x $f /; done; ldconfig
[ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ] && export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
[ -f /usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json ] && export __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
xz -T8 -dc node24.xz > /tmp/node && chmod +x /tmp/node
xz -dc dawn.node.xz > node_modules/webgpu/dist/linux-x64/dawn.node
N=/tmp/node
export KVLAB_SHARED=$G/shared
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem --format=csv | tee $OUT/nvidia-smi.txt
ls /usr/local/nvidia/share/vulkan/icd.d/ 2>&1; ldconfig -p | grep -c libvulkan
el "info"
export KVLAB_GPU_BACKEND=vulkan
if ! timeout 60 $N a/b/cli.mjs info --json > $OUT/info.json 2>$OUT/info.err || ! grep -q '"backend": *"vulkan"' $OUT/info.json; then
  echo "vulkan failed:"; tail -5 $OUT/info.err; grep -o '"detail":[^,]*' $OUT/info.json
  export KVLAB_GPU_BACKEND=opengl
  timeout 60 $N a/b/cli.mjs info --json > $OUT/info.json 2>>$OUT/info.err
fi
grep -o '"name": *"webgpu"[^}]*' $OUT/info.json | head -3; grep -o '"device": *"[^"]*"' $OUT/info.json
el "reference rows (stories260K, llama.cpp protocol, 20 chunks) on webgpu and wasm"
T=shared/data/wikitext-2-raw/wiki.test.raw; M=shared/models/stories260K/hf
for ex in webgpu wasm; do for c in f32 f16; do for ctx in 128 256 512; do
  timeout 120 $N a/b/cli.mjs ppl --model $M --text $T --ctx $ctx --chunks 20 --cache $c --executor $ex --json 2>/dev/null | tail -1 >> $OUT/ppl-ref.jsonl
done; done; done
cut -c1-400 $OUT/ppl-ref.jsonl | grep -o '"nCtx":[0-9]*\|"cache":"[a-z0-9]*"\|"executor":"[a-z]*"\|"ppl":[0-9.]*\|"tokensPerSecond":[0-9.]*' | paste -sd' ' | sed 's/"nCtx"/\n&/g'
el "attention bench"
timeout 200 $N a/b/gpu-attention.mjs --out $OUT/gpu-attention.md > $OUT/gpu-attention.log 2>&1; echo "rc $?"; grep -v Warning $OUT/gpu-attention.log | tail -32
el "test bundles"
for t in a/b/t-*.test.mjs; do
  timeout 150 $N --test $t > $OUT/test-$(basename $t .mjs).log 2>&1; rc=$?
  echo "$(basename $t): rc $rc $(grep -E '^ℹ (pass|fail|skipped)' $OUT/test-$(basename $t .mjs).log | paste -sd' ')"
done 2>&1 | tee $OUT/tests-summary.txt
el "synthetic qwen2.5-0.5b forward"
timeout 90 $N a/b/cli.mjs synth-model --shape qwen2.5-0.5b --out /tmp/q05 2>&1 | tail -1
for ex in webgpu wasm; do
  timeout 120 $N a/b/cli.mjs ppl --model /tmp/q05 --text data/sotu/heldout.txt --ctx 512 --chunks 2 --executor $ex --json 2>/dev/null | tail -1 | cut -c1-600 | tee -a $OUT/q05.jsonl
  timeout 120 $N a/b/cli.mjs ppl --model /tmp/q05 --text data/sotu/heldout.txt --ctx 128 --chunks 1 --protocol chunked --chunk-size 1 --executor $ex --json 2>/dev/null | tail -1 | cut -c1-600 | tee -a $OUT/q05.jsonl
done
el "done"
