#!/usr/bin/env bash
# Consumer check of the npm package (issue 14): pack kvlab (prepack builds build/kvlab.wasm and
# dist/), install the tarball into a fresh temporary project (from the npm cache when it can:
# --prefer-offline), then there, with no TypeScript loader:
#   (a) import the library on plain Node and compare an int8 cache's attention with f32's
#       (tools/package-consumer/consumer.mjs), on every Node of KVLAB_CHECK_NODES;
#   (b) type-check a small TypeScript consumer under `strict` against the shipped .d.ts;
#   (c) run `npx kvlab info --json`;
#   (d) bundle `import ... from "kvlab"` for the browser with esbuild (the exports map's browser
#       condition: dist/browser.js, with dist/platform/host.browser.js through the "browser" field).
# KVLAB_CHECK_NODES: space-separated Node versions besides the running one, each run through
# `npx -p node@V node` (needs the npm registry or the npm cache), e.g. KVLAB_CHECK_NODES="24".
# KVLAB_CHECK_QUICKSTART=1: also run `npx kvlab run` on the packaged built-in quickstart.
# KVLAB_CHECK_TARBALL: use this tarball instead of packing. KVLAB_CHECK_SKIP_ASBUILD=1: pack with
# the build/kvlab.wasm already built (the test suite's way; see below).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/kvlab-pkg.XXXXXX")"
trap 'rm -rf "$work"' EXIT

if [ -n "${KVLAB_CHECK_TARBALL:-}" ]; then
  tarball="$KVLAB_CHECK_TARBALL"
else
  if [ -n "${KVLAB_CHECK_SKIP_ASBUILD:-}" ]; then
    # Inside `npm test` (which has just built build/kvlab.wasm): rebuild only dist/, and pack
    # without the lifecycle scripts, so tests running beside this one never see a half-written wasm.
    (cd "$repo" && npm run --silent build:dist && npm pack --silent --ignore-scripts --pack-destination "$work" >/dev/null)
  else
    (cd "$repo" && npm pack --silent --pack-destination "$work" >/dev/null)
  fi
  tarball="$(ls "$work"/kvlab-*.tgz)"
fi
tar tzf "$tarball" > "$work/files.txt"
echo "tarball: $(basename "$tarball") $(stat -c %s "$tarball") bytes, $(wc -l < "$work/files.txt") files"
bad="$(grep -E '^package/(test|bench|results|tools|src|assembly)/' "$work/files.txt" || true)"
if [ -n "$bad" ]; then echo "tarball ships files it must not:"; echo "$bad" | head; exit 1; fi
for f in package/dist/index.js package/dist/index.d.ts package/dist/cli.js package/build/kvlab.wasm package/bin/kvlab.js package/LICENSE package/README.md; do
  grep -qx "$f" "$work/files.txt" || { echo "tarball lacks $f"; exit 1; }
done

app="$work/app"
mkdir -p "$app"
cd "$app"
printf '{ "name": "kvlab-consumer", "private": true, "type": "module" }\n' > package.json
npm install --prefer-offline --no-audit --no-fund --loglevel=error "$tarball" >/dev/null
[ ! -e node_modules/tsx ] || { echo "the consumer install pulled in tsx"; exit 1; }
for dev in fast-check tinybench assemblyscript webgpu @assemblyscript/loader @huggingface/gguf; do
  [ ! -e "node_modules/$dev" ] || { echo "the consumer install pulled in $dev"; exit 1; }
done
echo "consumer node_modules: $(du -sm node_modules | cut -f1) MB"

# (a) the library on plain Node
cp "$repo/tools/package-consumer/consumer.mjs" .
echo "node $(node --version): $(node consumer.mjs)"
for v in ${KVLAB_CHECK_NODES:-}; do
  echo "node@$v: $(npx --yes -p "node@$v" node consumer.mjs)"
done

# (b) a strict TypeScript consumer
cp "$repo/tools/package-consumer/consumer.ts" .
cat > tsconfig.json <<JSON
{ "compilerOptions": { "target": "ES2022", "module": "NodeNext", "moduleResolution": "NodeNext",
  "strict": true, "skipLibCheck": false, "noEmit": true, "lib": ["ES2022", "DOM"],
  "typeRoots": ["$repo/node_modules/@types", "$repo/node_modules/@webgpu"], "types": ["node", "types"] },
  "files": ["consumer.ts"] }
JSON
# skipLibCheck is off so kvlab's own declarations are checked too; the only errors tolerated are
# those inside @huggingface/tokenizers' declarations (extensionless relative imports, its bug).
node "$repo/node_modules/typescript/bin/tsc" -p tsconfig.json > tsc.log || true
if grep -v '^node_modules/@huggingface/tokenizers/' tsc.log | grep -q .; then
  echo "TypeScript consumer: type errors"; grep -v '^node_modules/@huggingface/tokenizers/' tsc.log; exit 1
fi
echo "TypeScript consumer: strict type-check passed ($(grep -c . tsc.log || true) errors inside @huggingface/tokenizers' own .d.ts ignored)"

# (c) the CLI from the compiled package
npx --no-install kvlab info --json > info.json
node -e '
const info = JSON.parse(require("fs").readFileSync("info.json", "utf8"));
const names = JSON.stringify(info).match(/"int8"|"wasm"/g) ?? [];
if (!names.includes("\"int8\"") || !names.includes("\"wasm\"")) { console.error("kvlab info --json lacks int8/wasm"); process.exit(1); }
console.log("npx kvlab info --json: ok (" + Object.keys(info).join(", ") + ")");
'
# (d) the browser entry through a bundler: no Node module may be reached
cat > browser-app.mjs <<'JS'
import { createCache, evaluateCaches, loadModelFromFiles, mountFiles, setDefaultWasmLocation } from "kvlab";
setDefaultWasmLocation("/kvlab.wasm");
console.log(typeof createCache, typeof evaluateCaches, typeof loadModelFromFiles, typeof mountFiles);
JS
"$repo/node_modules/.bin/esbuild" browser-app.mjs --bundle --platform=browser --format=esm \
  --outfile=browser-bundle.js --metafile=browser-meta.json --log-level=error
node -e '
const inputs = Object.keys(JSON.parse(require("fs").readFileSync("browser-meta.json", "utf8")).inputs);
const host = inputs.filter((f) => f.includes("kvlab/dist/platform/host"));
if (host.length !== 1 || !host[0].endsWith("host.browser.js")) { console.error("browser bundle took the wrong host: " + host); process.exit(1); }
if (!inputs.some((f) => f.endsWith("kvlab/dist/browser.js"))) { console.error("browser bundle did not start at dist/browser.js"); process.exit(1); }
console.log("browser bundle (esbuild --platform=browser): ok (" + inputs.length + " modules, " + require("fs").statSync("browser-bundle.js").size + " bytes)");
'

# (e) opt-in (about a minute on 2 cores): the built-in quickstart from the package
if [ -n "${KVLAB_CHECK_QUICKSTART:-}" ]; then
  npx --no-install kvlab run node_modules/kvlab/experiments/quickstart.yaml
  [ -s results/quickstart/runs.jsonl ] && [ -s results/quickstart/ppl-vs-memory.png ] || { echo "quickstart wrote no results"; exit 1; }
  echo "npx kvlab run quickstart.yaml: ok ($(wc -l < results/quickstart/runs.jsonl) runs)"
fi
echo "package check passed"
