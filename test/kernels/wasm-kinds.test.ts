/**
 * The wasm executor's per-kind table (src/kernels/wasm-kinds.ts) over every pair of codecs:
 * each (key codec, value codec) pair either runs a wasm attention kernel (no fallback) and
 * equals refAttend over the same reference-encoded rows, or is a counted fallback. Which pairs
 * fall back is written out here from assembly/attend-ggml.ts's rule (ggml blocks pair only with
 * ggml, float and integer rows), not read from the table: the test fails when a row claims a
 * pairing the kernels cannot read, or a kernel stops being used.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { refAttend } from "../../src/kernels/ref.ts";
import type { WasmExecutor } from "../../src/kernels/wasm.ts";
import { CODECS, makeCodec } from "../../src/quant/registry.ts";
import { allocRows, type CodecName } from "../../src/quant/types.ts";
import { GGML_CODECS, TURBO_CODECS, TURBO_QJL_CODECS } from "../helpers/codec-cases.ts";
import { randn, rng, wasmExecutor, wasmSkip } from "./wasm-helpers.ts";

let exec: WasmExecutor;
before(async () => {
  if (!wasmSkip) exec = await wasmExecutor();
});
after(() => exec?.dispose());

const GGML = new Set<string>(GGML_CODECS);
const TURBO = new Set<string>([...TURBO_CODECS, ...TURBO_QJL_CODECS]);
/** attend-ggml.ts pairs ggml rows with ggml, float and integer rows only. */
const fallsBack = (k: string, v: string) => (GGML.has(k) && TURBO.has(v)) || (GGML.has(v) && TURBO.has(k));
/** Loose bound for every pair at once (the per-kind suites hold the tight ones): of max |v|. */
const REL = 1e-4;

test("every codec pair: a wasm kernel equal to refAttend, or a counted fallback where none pairs", {
  skip: wasmSkip,
}, () => {
  const d = 64; // ggml blocks need a multiple of 32
  const nRows = 3;
  const nSlots = 40;
  const r = rng(17);
  const names = Object.keys(CODECS) as CodecName[];
  const rows = new Map(
    names.map((name) => {
      const codec = makeCodec(name);
      const x = randn(r, nSlots * d);
      const enc = allocRows(codec.layout(d), nSlots);
      codec.encode(x, nSlots, d, enc, 0); // the reference encode: rows independent of wasm
      const dec = new Float32Array(nSlots * d);
      codec.decode(enc, 0, nSlots, d, dec);
      return [name, { codec, enc, maxAbs: dec.reduce((m, y) => Math.max(m, Math.abs(y)), 0) }] as const;
    }),
  );
  const q = randn(r, nRows * d);
  const qPos = Int32Array.of(nSlots - 1, 20, 5);
  const slotPos = Int32Array.from({ length: nSlots }, (_, j) => j);
  let kernels = 0;
  for (const kName of names)
    for (const vName of names) {
      const K = rows.get(kName)!;
      const V = rows.get(vName)!;
      const args = {
        kCodec: K.codec,
        vCodec: V.codec,
        headDim: d,
        q,
        qPos,
        nRows,
        k: K.enc,
        v: V.enc,
        slotPos,
        nSlots,
        scale: 1 / 8,
      };
      const want = new Float32Array(nRows * d);
      refAttend({ ...args, out: want });
      const out = new Float32Array(nRows * d);
      const before = exec.fallbacks.get("attend") ?? 0;
      exec.attend({ ...args, out });
      const fell = (exec.fallbacks.get("attend") ?? 0) - before;
      const pair = `${kName} keys / ${vName} values`;
      assert.equal(fell, fallsBack(kName, vName) ? 1 : 0, `${pair}: fallbacks counted`);
      if (!fell) kernels++;
      let worst = 0;
      for (let i = 0; i < out.length; i++) worst = Math.max(worst, Math.abs(out[i]! - want[i]!));
      assert.ok(worst <= REL * V.maxAbs, `${pair}: max |wasm - ref| ${worst} > ${REL} x ${V.maxAbs}`);
    }
  assert.ok(kernels > names.length ** 2 / 2, `only ${kernels} pairs ran a wasm kernel`);
});
