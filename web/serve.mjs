#!/usr/bin/env node
// A tiny static server for the web app (no dependencies): / is web/index.html, /dist/ the
// bundle, and the built-in model, text, configs and kvlab.wasm from the checkout. Every response
// carries COOP/COEP, so the page is cross-origin isolated and the wasm executor can run threads
// (Web Workers over a shared WebAssembly.Memory). Usage: node web/serve.mjs [--port 8080]
// [--host 127.0.0.1] [--no-isolation: leave COOP/COEP out, to see the one-thread fallback].
import { createReadStream, statSync } from "node:fs";
import { createServer } from "node:http";
import { extname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : dflt;
};
const port = Number(arg("port", process.env.PORT ?? 8080));
const host = arg("host", "127.0.0.1");

/** URL prefix -> folder of the checkout. Nothing else is served. */
const MOUNTS = [
  ["/dist/", "web/dist/"],
  ["/models/", "models/"],
  ["/data/", "data/"],
  ["/experiments/", "experiments/"],
  ["/build/kvlab.wasm", "build/kvlab.wasm"],
];
const TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".map": "application/json",
  ".json": "application/json",
  ".wasm": "application/wasm",
  ".yaml": "text/yaml; charset=utf-8",
  ".txt": "text/plain; charset=utf-8",
  ".md": "text/markdown; charset=utf-8",
};

function fileOf(pathname) {
  if (pathname === "/" || pathname === "/index.html") return join(root, "web/index.html");
  for (const [prefix, dir] of MOUNTS)
    if (pathname === prefix || (prefix.endsWith("/") && pathname.startsWith(prefix))) {
      const rest = normalize(decodeURIComponent(pathname.slice(prefix.length)));
      if (rest.startsWith("..") || rest.includes("\0")) return undefined;
      return join(root, dir, rest);
    }
  return undefined;
}

const isolate = !process.argv.includes("--no-isolation");
const server = createServer((req, res) => {
  const headers = {
    ...(isolate
      ? {
          "Cross-Origin-Opener-Policy": "same-origin",
          "Cross-Origin-Embedder-Policy": "require-corp",
          "Cross-Origin-Resource-Policy": "same-origin",
        }
      : {}),
    "Cache-Control": "no-cache",
  };
  const file = fileOf(new URL(req.url ?? "/", "http://x").pathname);
  let size = -1;
  try {
    if (file && statSync(file).isFile()) size = statSync(file).size;
  } catch {}
  if (size < 0) {
    res.writeHead(404, { ...headers, "Content-Type": "text/plain" }).end("not found\n");
    return;
  }
  res.writeHead(200, {
    ...headers,
    "Content-Type": TYPES[extname(file)] ?? "application/octet-stream",
    "Content-Length": size,
  });
  createReadStream(file).pipe(res);
});
server.listen(port, host, () => {
  const a = server.address();
  console.log(`kvlab web app: http://${host}:${typeof a === "object" && a ? a.port : port}/`);
});
