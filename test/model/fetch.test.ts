/** fetch-model against a local HTTP server standing in for the Hub ($HF_ENDPOINT): no internet needed. */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { ConfigError, KvlabError } from "../../src/errors.ts";
import { fetchModel } from "../../src/model/fetch.ts";
import { loadModel } from "../../src/model/load.ts";
import { synthModel } from "../../src/model/synth.ts";

let dir = "";
let server: Server;
let endpoint = "";
const requests: string[] = [];

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "kvlab-fetch-"));
  const src = synthModel({ shape: "tiny", out: join(dir, "hub"), seed: 5, dtype: "f16" });
  server = createServer((req, res) => {
    requests.push(req.url ?? "");
    const m = /^\/acme\/tiny\/resolve\/main\/([\w.-]+)$/.exec(req.url ?? "");
    const file = m ? join(src, m[1]!) : "";
    if (!m || !existsSync(file)) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200).end(readFileSync(file));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => {
  server.close();
  rmSync(dir, { recursive: true, force: true });
});

test("downloads a model that then loads, and skips files already present", async () => {
  const out = await fetchModel("acme/tiny", { endpoint, dir: join(dir, "dl") });
  const m = await loadModel(out, { executor: "ref" });
  assert.equal(m.config.dim, 32);
  m.dispose();
  const n = requests.length;
  await fetchModel("acme/tiny", { endpoint, dir: join(dir, "dl") });
  assert.equal(requests.length, n, "second fetch requested nothing");
});

test("a missing repo is one clear error; a malformed id is a ConfigError", async () => {
  await assert.rejects(fetchModel("acme/none", { endpoint, dir: join(dir, "none") }), (e: unknown) => {
    return e instanceof KvlabError && /HTTP 404/.test(e.message);
  });
  await assert.rejects(fetchModel("not a repo", { endpoint }), ConfigError);
});
