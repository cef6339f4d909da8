/**
 * kvlab's ggml codecs (src/quant/ggml-*.ts) against ggml itself: the reference quantizers
 * compiled into node-llama-cpp's prebuilt libggml-base.so (quantize_row_{q4_0,q4_1,q5_0,q5_1,
 * q8_0,iq4_nl}_ref), called through Python's ctypes on the same f32 rows, block bytes compared
 * (d, m, qh, qs). Needs `cd bench/peers && npm install` and python3.
 *
 *   node --import tsx bench/peers/ggml-crosscheck.ts [--rows 4000] [--seed 1]
 *
 * Rows (64 elements = 2 blocks) mix distributions: gaussian, uniform, heavy outliers, constant
 * blocks, exact ties of |max|, values on half-steps, tiny (f16-subnormal scales) and large
 * magnitudes. Prints, per type, the blocks compared and how many differ (0 = bit-identical).
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { makeCodec } from "../../src/quant/registry.ts";
import { allocRows, type CodecName } from "../../src/quant/types.ts";
import { mulberry32 } from "../../src/rng.ts";

const ROOT = resolve(fileURLToPath(new URL("../..", import.meta.url)));
const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i += 2)
  args.set(process.argv[i]!.replace(/^--/, ""), process.argv[i + 1]!);
const N_ROWS = Number(args.get("rows") ?? 4000);
const D = 64;
const TYPES = ["q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "iq4_nl"] as const;

const binDir = fileURLToPath(
  new URL("./node_modules/@node-llama-cpp/linux-x64/bins/linux-x64", import.meta.url),
);
const lib = join(binDir, readdirSync(binDir).find((f) => f === "libggml-base.so")!);

function rows(seed: number): Float32Array {
  const rand = mulberry32(seed);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
  const x = new Float32Array(N_ROWS * D);
  for (let r = 0; r < N_ROWS; r++) {
    const kind = r % 8;
    const scale = 2 ** (Math.floor(rand() * 30) - 20);
    for (let i = 0; i < D; i++) {
      let v: number;
      if (kind === 0) v = gauss();
      else if (kind === 1) v = rand() * 2 - 1;
      else if (kind === 2) v = gauss() * (rand() < 0.05 ? 20 : 1);
      else if (kind === 3)
        v = i < 32 ? 0.75 : -0.75; // constant blocks
      else if (kind === 4)
        v = (i % 2 ? -1 : 1) * (1 + Math.floor(rand() * 8) / 8); // ties of |max|
      else if (kind === 5)
        v = Math.round((rand() * 16 - 8) * 2) / 2; // half-steps
      else if (kind === 6)
        v = gauss() * 1e-6; // tiny
      else v = gauss() * 100 + 30; // off-centre, large
      x[r * D + i] = kind < 3 || kind === 6 || kind === 7 ? v * scale : v;
    }
  }
  return x;
}

/** ggml's block bytes of kvlab's encoding: d (f16 LE), m (q4_1/q5_1), then the payload block. */
function kvlabBlocks(type: CodecName, x: Float32Array): Buffer {
  const codec = makeCodec({ type } as never);
  const L = codec.layout(D);
  const enc = allocRows(L, N_ROWS);
  codec.encode(x, N_ROWS, D, enc, 0);
  const per = L.payloadBytes / L.nGroups;
  const parts: Buffer[] = [];
  for (let r = 0; r < N_ROWS; r++)
    for (let b = 0; b < L.nGroups; b++) {
      const head = Buffer.alloc(L.zerosPerRow ? 4 : 2);
      head.writeUInt16LE(enc.scales[r * L.scalesPerRow + b]!, 0);
      if (L.zerosPerRow) head.writeUInt16LE(enc.zeros[r * L.zerosPerRow + b]!, 2);
      const at = r * L.payloadBytes + b * per;
      parts.push(head, Buffer.from(enc.payload.subarray(at, at + per)));
    }
  return Buffer.concat(parts);
}

const PY = `
import ctypes, sys
lib = ctypes.CDLL(sys.argv[1])
src = open(sys.argv[2], 'rb').read()
n = len(src) // 4
fn = getattr(lib, 'quantize_row_%s_ref' % sys.argv[3])
fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
bsz = int(sys.argv[5])
inb = ctypes.create_string_buffer(src, len(src))
out = ctypes.create_string_buffer(n // 32 * bsz)
fn(inb, out, n)
open(sys.argv[4], 'wb').write(out.raw)
`;

const tmp = join(ROOT, "tmp", "ggml-crosscheck");
mkdirSync(tmp, { recursive: true });
const x = rows(Number(args.get("seed") ?? 1));
writeFileSync(join(tmp, "rows.f32"), Buffer.from(x.buffer));
let bad = 0;
for (const type of TYPES) {
  const mine = kvlabBlocks(type, x);
  const bsz = mine.length / ((N_ROWS * D) / 32);
  const out = join(tmp, `${type}.bin`);
  const r = spawnSync("python3", ["-c", PY, lib, join(tmp, "rows.f32"), type, out, String(bsz)], {
    encoding: "utf8",
  });
  if (r.status !== 0) throw new Error(`python3/ctypes on ${lib} failed: ${r.stderr}`);
  const theirs = readFileSync(out);
  let diff = 0;
  let first = -1;
  let outOfRange = 0;
  let zeroScale = 0;
  for (let b = 0; b < theirs.length / bsz; b++) {
    const t = theirs.subarray(b * bsz, (b + 1) * bsz);
    const m = mine.subarray(b * bsz, (b + 1) * bsz);
    if (t.equals(m)) continue;
    // ggml stores an f16 d or m beyond range as ±Inf; kvlab saturates to ±65504 (and counts it).
    const inf = (h: number) => (h & 0x7c00) === 0x7c00;
    if (inf(t.readUInt16LE(0)) || (type.endsWith("_1") && inf(t.readUInt16LE(2)))) {
      outOfRange++;
      continue;
    }
    // iq4_nl with d = 0 (max|x| < 1e-15): ggml leaves the indices as its scratch held them.
    if (type === "iq4_nl" && t.readUInt16LE(0) === 0 && m.readUInt16LE(0) === 0) {
      zeroScale++;
      continue;
    }
    diff++;
    if (first < 0) first = b;
  }
  bad += diff;
  console.log(
    `${type}: ${theirs.length / bsz} blocks of ${bsz} bytes, ${diff} differ from ggml's quantize_row_${type}_ref` +
      ` (not compared: ${outOfRange} with d or m beyond f16 range, ${zeroScale} with d = 0)` +
      (first >= 0
        ? ` (first: block ${first}: ggml ${theirs.subarray(first * bsz, (first + 1) * bsz).toString("hex")} kvlab ${mine.subarray(first * bsz, (first + 1) * bsz).toString("hex")})`
        : ""),
  );
}
console.log(`ggml library: ${lib}`);
process.exitCode = bad ? 1 : 0;
