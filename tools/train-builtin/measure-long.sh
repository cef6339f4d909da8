#!/usr/bin/env bash
# The numbers in models/sotu-llama-long/README.md, measured by kvlab itself on the shipped weights.
#   bash tools/train-builtin/measure-long.sh [outdir]      (about 5 minutes on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${1:-/tmp/sotu-llama-long-measure}
M=models/sotu-llama-long
T=data/sotu/heldout.txt
mkdir -p "$OUT"
for ctx in 128 512 1024; do
  npx kvlab ppl --model $M --text $T --protocol llamacpp --ctx $ctx --cache f16 --json > "$OUT/ppl-f16-ctx$ctx.json"
done
npx kvlab ppl --model $M --text $T --protocol llamacpp --ctx 2048 --chunks 8 --cache f16 --json > "$OUT/ppl-f16-ctx2048.json" 2> "$OUT/ppl-f16-ctx2048.stderr" || true
GRID=(--length 256,512,1024 --depths 0,0.25,0.5,0.75,1 --samples 5)
npx kvlab task passkey --model $M "${GRID[@]}" --cache f16 --json > "$OUT/passkey-f16.json"
npx kvlab task passkey --model $M "${GRID[@]}" --cache f16 --control --json > "$OUT/passkey-control.json"
npx kvlab task passkey --model $M "${GRID[@]}" --cache '{"codec":"f16","policy":{"type":"window","budget":128}}' --json > "$OUT/passkey-window128.json"
npx kvlab task needle --model $M "${GRID[@]}" --cache f16 --json > "$OUT/needle-f16.json"
npx kvlab task kv-recall --model $M --length 256,512,1024 --depths 0,0.5,1 --samples 5 --cache f16 --json > "$OUT/kv-recall-f16.json"
npx kvlab task vt --model $M --length 256,512,1024 --depths 0,0.5,1 --samples 5 --cache f16 --json > "$OUT/vt-f16.json"
npx kvlab probe --model $M --text $T --ctx 1024 --segments 4 --json > "$OUT/probe.json"
echo "wrote $OUT"
