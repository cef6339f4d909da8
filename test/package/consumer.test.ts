// Consumer check of the npm package (issue 14): tools/check-package.sh packs kvlab, installs the
// tarball into a fresh project and there imports the compiled library on plain Node (an int8
// attend on the wasm executor against f32), type-checks a strict TypeScript consumer and runs
// `npx kvlab info --json`; on this Node and on Node 24 (the current LTS, through `npx -p node@24`;
// KVLAB_CHECK_NODES overrides, empty for this Node only).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const script = fileURLToPath(new URL("../../tools/check-package.sh", import.meta.url));

test("npm package: packed tarball installs and works in a fresh consumer project", {
  timeout: 600_000,
}, () => {
  const r = spawnSync("bash", [script], {
    encoding: "utf8",
    env: {
      ...process.env,
      KVLAB_CHECK_SKIP_ASBUILD: "1",
      KVLAB_CHECK_NODES: process.env.KVLAB_CHECK_NODES ?? "24",
    },
  });
  const log = `${r.stdout}\n${r.stderr}`;
  assert.equal(r.status, 0, `tools/check-package.sh failed:\n${log}`);
  assert.match(r.stdout, /package check passed/);
  assert.match(r.stdout, /node@24: \{/);
  console.log(r.stdout.trim());
});
