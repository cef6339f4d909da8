#!/bin/bash
# Peak RSS of kvlab ppl, before (f2989c3, extracted to /tmp/h2-before) and after (this tree),
# checkout form (bin/kvlab.js -> tsx + src/cli.ts) and installed form (dist/cli.js), 3 runs each.
# before: git archive f2989c3 src bin package.json tsconfig*.json tools | tar -x -C /tmp/h2-before,
#   node_modules and build/ linked from the checkout, dist/ by tsc -p tsconfig.build.json there.
# after: this tree; its dist/ built by tsc -p tsconfig.build.json --outDir tmp/h2/pkg/dist
#   (build/ linked at tmp/h2/pkg/build), so the shared dist/ was left alone.
# Peak RSS = /usr/bin/time %M (ru_maxrss), in MiB. JSON compared without tokensPerSecond.
M=/work/shared/models/stories260K/hf; T=/work/shared/data/wikitext-2-raw/wiki.test.raw
S=/tmp/kvlab-bench/synth-smollm2-135m; BT=/tmp/kvlab-bench/forward-text.txt
declare -A CLI=( [before-tsx]=/tmp/h2-before/bin/kvlab.js [before-dist]=/tmp/h2-before/dist/cli.js [after-tsx]=/work/main/bin/kvlab.js [after-dist]=/work/main/tmp/h2/pkg/dist/cli.js )
for model in 260k smol; do
  if [ $model = 260k ]; then args="--model $M --text $T --ctx 128 --chunks 4 --executor wasm --json"; else args="--model $S --text $BT --protocol llamacpp --ctx 512 --chunks 1 --executor wasm --json"; fi
  for th in 1 2; do for v in before-tsx after-tsx before-dist after-dist; do
    out=""
    for i in 1 2 3; do
      kb=$(KVLAB_THREADS=$th /usr/bin/time -f %M node ${CLI[$v]} ppl $args 2>&1 >/tmp/h2-m-$model-$v-$th.json | tail -1)
      out="$out $((kb/1024))"
      sed 's/"tokensPerSecond":[0-9.e+-]*,//' /tmp/h2-m-$model-$v-$th.json > /tmp/h2-m-$model-$v-$th.norm
    done
    echo "$model t$th $v MiB:$out"
  done
  for v in after-tsx before-dist after-dist; do cmp -s /tmp/h2-m-$model-before-tsx-$th.norm /tmp/h2-m-$model-$v-$th.norm && echo "  $model t$th $v json = before-tsx" || echo "  $model t$th $v JSON DIFFERS"; done
  done
done
