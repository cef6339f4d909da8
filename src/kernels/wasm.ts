/**
 * The `wasm` executor: AssemblyScript v128 SIMD kernels (assembly/) over one shared linear
 * memory. Arrays from alloc* live in that memory and are passed to kernels by pointer; other
 * arrays are copied in and out (counted in `copies`). Codec encode/decode reproduce the TS
 * reference (src/quant) bit for bit; attention and model ops agree with `ref` within named
 * tolerances (f32 accumulation in SIMD lanes instead of the reference's f64 running sums).
 */
import { DeviceUnavailableError, ShapeError } from "../errors.ts";
import { defaultWasmLocation, existsSync, HOST, defaultThreads as hostThreads } from "../platform/host.ts";
import { q8wValues } from "../quant/q8-weights.ts";
import type { TurboName } from "../quant/turboquant.ts";
import type { TurboQjlName } from "../quant/turboquant-qjl.ts";
import type { Codec, CodecName, EncodedRows, EncodeStats, RowLayout } from "../quant/types.ts";
import {
  type AttendArgs,
  countFallback,
  type Executor,
  type OpName,
  type Ops,
  sizes,
  withFallbacks,
} from "./executor.ts";
import { createRefExecutor, refAttend } from "./ref.ts";
import { Arena } from "./wasm-arena.ts";
import { loadWasmBuild, type WasmBuild, wasmBuildFromEnv } from "./wasm-build.ts";
import { wasmChannelOps } from "./wasm-channel.ts";
import { type CopyCounts, Marshal, WasmHeap } from "./wasm-heap.ts";
import { KIND_GGML, kindOf, type RowsCall, type WasmCodecTraits } from "./wasm-kinds.ts";
import { type KvlabWasmExports, loadKvlabWasm, type WasmSource } from "./wasm-loader.ts";
import {
  createWorkerPool,
  OP_ADD,
  OP_ATTEND,
  OP_MATMUL,
  OP_NLL,
  OP_RMSNORM,
  OP_SWAP,
  OP_SWIGLU,
  type PoolStats,
  runTile,
  type WorkerPool,
} from "./wasm-pool.ts";
import { KIND_TURBO, KIND_TURBO_QJL, TurboTables } from "./wasm-turbo.ts";
import { matrixType, storedLength } from "./weights.ts";

export interface WasmExecutorOptions {
  /** Threads for matmul and attention (main thread included). Default: $KVLAB_THREADS, else the core count. */
  threads?: number;
  /** Path of the compiled module (default build/kvlab.wasm). */
  wasmPath?: string;
  /** The compiled module as a path or URL, its bytes, or a WebAssembly.Module (browsers: a URL or bytes). */
  wasm?: WasmSource;
  /**
   * Without wasm/wasmPath: which build (wasm-build.ts): "auto" (default, or $KVLAB_WASM) is
   * build/kvlab-relaxed.wasm where the engine validates relaxed SIMD, else build/kvlab.wasm.
   */
  build?: WasmBuild;
}

export interface WasmExecutor extends Executor {
  readonly name: "wasm";
  /** The module loaded: its path or URL, or "(given module)". */
  readonly wasmSource: string;
  /** Threads in use (1 = main thread only). */
  readonly threads: number;
  /** Arrays copied in/out because they were not allocated by this executor. */
  readonly copies: CopyCounts;
  /** Bytes held by live arena blocks. */
  bytesInUse(): number;
  /** How pooled jobs ran (undefined with 1 thread); see wasm-pool.ts on backing off from late workers. */
  poolStats(): PoolStats | undefined;
}

/**
 * The wasm kernels' codec traits (assembly/ codec kind, whose kernels are wasm-kinds.ts's row;
 * bits of the integer codecs). Keyed by CodecName: a codec added without a row here is a type
 * error; give it `kind: null` to run it through ref (each call a counted fallback) until it
 * has kernels.
 */
const WASM_CODECS: Record<CodecName, WasmCodecTraits> = {
  f32: { kind: 0 },
  f16: { kind: 1 },
  bf16: { kind: 2 },
  "fp8-e4m3": { kind: 3 },
  int8: { kind: 4, bits: 8 },
  int4: { kind: 4, bits: 4 },
  int2: { kind: 4, bits: 2 },
  // ggml block types: assembly/codec-ggml.ts and attend-ggml.ts (type index in the bits field).
  q4_0: { kind: KIND_GGML, bits: 0 },
  q4_1: { kind: KIND_GGML, bits: 1 },
  q5_0: { kind: KIND_GGML, bits: 2 },
  q5_1: { kind: KIND_GGML, bits: 3 },
  q8_0: { kind: KIND_GGML, bits: 4 },
  iq4_nl: { kind: KIND_GGML, bits: 5 },
  // TurboQuant MSE codecs: assembly/codec-turbo.ts (codebook tables: wasm-turbo.ts).
  turbo2: { kind: KIND_TURBO },
  "turbo2.5": { kind: KIND_TURBO },
  turbo3: { kind: KIND_TURBO },
  "turbo3.5": { kind: KIND_TURBO },
  turbo4: { kind: KIND_TURBO },
  // TurboQuant_prod: assembly/turbo-qjl.ts (MSE codes + QJL signs; attention without decoding the sketch).
  "turbo3-qjl": { kind: KIND_TURBO_QJL },
  "turbo4-qjl": { kind: KIND_TURBO_QJL },
};

/** Kernel descriptor of a codec (its kind in the low 4 bits; wasm-kinds.ts), or -1 if unsupported. */
function codecDesc(codec: Codec, headDim: number, k: KvlabWasmExports): number {
  const t = codec.options.type;
  const traits = Object.hasOwn(WASM_CODECS, t) ? WASM_CODECS[t] : undefined;
  if (!traits || traits.kind === null || codec.options.axis !== "token") return -1;
  return kindOf(traits.kind).desc(traits, codec, headDim, k);
}

function need(arr: ArrayBufferView & { length: number }, n: number, what: string): void {
  if (arr.length < n) throw new ShapeError(`${what} has ${arr.length} elements, the op needs ${n}`);
}

function rowsView(rows: EncodedRows, L: RowLayout, row: number, nRows: number, what: string) {
  need(rows.payload, (row + nRows) * L.payloadBytes, `${what}.payload`);
  need(rows.scales, (row + nRows) * L.scalesPerRow, `${what}.scales`);
  need(rows.zeros, (row + nRows) * L.zerosPerRow, `${what}.zeros`);
  return {
    payload: rows.payload.subarray(row * L.payloadBytes, (row + nRows) * L.payloadBytes),
    scales: rows.scales.subarray(row * L.scalesPerRow, (row + nRows) * L.scalesPerRow),
    zeros: rows.zeros.subarray(row * L.zerosPerRow, (row + nRows) * L.zerosPerRow),
  };
}

/** Threads to use when none is asked for: $KVLAB_THREADS, else the machine's parallelism. */
export function defaultThreads(): number {
  return hostThreads();
}

/** Whether build/kvlab.wasm exists and instantiates here. */
export async function probeWasm(
  path: string | URL = defaultWasmLocation(),
): Promise<{ available: boolean; detail: string }> {
  if (HOST === "node" && !existsSync(String(path)))
    return { available: false, detail: `${path} is missing: run npm run asbuild` };
  try {
    // the build createWasmExecutor would load by default (wasm-build.ts)
    const { location } = await loadWasmBuild(wasmBuildFromEnv(), path);
    const relaxed = location !== path;
    return {
      available: true,
      detail: relaxed
        ? "AssemblyScript SIMD kernels, relaxed-SIMD build (build/kvlab-relaxed.wasm: FMA, i8 dot)"
        : "AssemblyScript SIMD kernels (build/kvlab.wasm; the relaxed-SIMD build needs an engine with relaxed SIMD, e.g. Node 22+)",
    };
  } catch (e) {
    return { available: false, detail: `${(e as Error).message}; run npm run asbuild` };
  }
}

export async function createWasmExecutor(options: WasmExecutorOptions = {}): Promise<WasmExecutor> {
  const given = options.wasm ?? options.wasmPath;
  const source = given ?? defaultWasmLocation();
  if (HOST === "node" && typeof source === "string" && !existsSync(source))
    throw new DeviceUnavailableError(`${source} is missing: run npm run asbuild`);
  // No module given: the relaxed-SIMD build where the engine runs it correctly (wasm-build.ts)
  const {
    module,
    memory,
    exports: k,
    location,
  } = given !== undefined
    ? { ...(await loadKvlabWasm(given)), location: given }
    : await loadWasmBuild(options.build ?? wasmBuildFromEnv(), defaultWasmLocation());
  const heap = new WasmHeap(memory, new Arena(memory, k.heapBase()));
  const threads = Math.max(1, Math.floor(options.threads ?? defaultThreads()));
  const pool: WorkerPool | undefined =
    threads > 1 ? await createWorkerPool(module, heap, k, threads - 1) : undefined;
  const stats = heap.scratch(16); // {nonFinite, saturated} i32 pair written by the encoders
  const turboTables = new TurboTables(heap);
  /** What a kernel of desc's kind reads as the codebook table: TurboQuant's, else 0. */
  const tableOf = (codec: Codec, desc: number, headDim: number) =>
    kindOf(desc).table ? turboTables.ptr(codec.options.type as TurboName | TurboQjlName, headDim) : 0;
  const statsView = () => new Int32Array(heap.buffer, stats, 2);
  /** Encode f32 rows x into `rows`, or decode `rows` into x, with the kernels of desc's kind. */
  const rowsOp = (
    op: "encode" | "decode",
    codec: Codec,
    desc: number,
    L: RowLayout,
    nRows: number,
    headDim: number,
    x: Float32Array,
    rows: EncodedRows,
  ) => {
    const kind = kindOf(desc);
    const enc = op === "encode";
    const m = new Marshal(heap);
    const call: RowsCall = {
      desc,
      nRows,
      headDim,
      groupSize: L.groupSize,
      x: m.ptr(x.subarray(0, nRows * headDim), enc ? "in" : "out"),
      table: tableOf(codec, desc, headDim),
      payload: m.ptr(rows.payload, enc ? kind.payload : "in"),
      scales: m.ptr(rows.scales, enc ? "out" : "in"),
      zeros: m.ptr(rows.zeros, enc ? "out" : "in"),
      stats,
    };
    if (enc) kind.encode(k, call, heap);
    else kind.decode(k, call);
    m.finish();
  };
  // Grow-only scratch for the model ops (rope's cos/sin, nll's targets and outputs), so a
  // forward call allocates nothing in the arena once it has run at its largest size.
  let opScratch = 0;
  let opScratchBytes = 0;
  const ensureOpScratch = (bytes: number): number => {
    if (bytes > opScratchBytes) {
      if (opScratch) heap.release(opScratch);
      opScratchBytes = Math.max(bytes, opScratchBytes * 2);
      opScratch = heap.scratch(opScratchBytes);
    }
    return opScratch;
  };
  // Whether an elementwise/per-row op of `work` f32 elements is worth a pool job: below this
  // a worker's wake-up costs more than its share (a 2^16-element pass takes ~20-40 us).
  const POOL_ELEMS = 1 << 16;
  const exec: Omit<WasmExecutor, OpName> & Partial<Ops> = {
    name: "wasm",
    fallbacks: new Map(),
    wasmSource: typeof location === "string" || location instanceof URL ? String(location) : "(given module)",
    threads,
    copies: heap.copies,
    bytesInUse: () => heap.arena.bytesInUse,
    poolStats: () => (pool ? { ...pool.stats } : undefined),
    allocF32: (n) => heap.alloc(Float32Array, n),
    allocU8: (n) => heap.alloc(Uint8Array, n),
    allocU16: (n) => heap.alloc(Uint16Array, n),
    allocI32: (n) => heap.alloc(Int32Array, n),
    free: (arr) => heap.free(arr),

    encodeRows(codec, src, nRows, headDim, dst, dstRow): EncodeStats {
      sizes("encodeRows", { nRows, headDim, dstRow });
      const desc = codecDesc(codec, headDim, k);
      if (desc < 0) {
        countFallback(exec, "encodeRows");
        return codec.encode(src, nRows, headDim, dst, dstRow);
      }
      if (nRows === 0) return { nonFinite: 0, saturated: 0 };
      need(src, nRows * headDim, "src");
      const L = codec.layout(headDim);
      rowsOp("encode", codec, desc, L, nRows, headDim, src, rowsView(dst, L, dstRow, nRows, "dst"));
      const st = statsView();
      return { nonFinite: st[0]!, saturated: st[1]! };
    },

    decodeRows(codec, src, srcRow, nRows, headDim, dst) {
      sizes("decodeRows", { srcRow, nRows, headDim });
      const desc = codecDesc(codec, headDim, k);
      if (desc < 0) {
        countFallback(exec, "decodeRows");
        codec.decode(src, srcRow, nRows, headDim, dst);
        return;
      }
      if (nRows === 0) return;
      need(dst, nRows * headDim, "dst");
      const L = codec.layout(headDim);
      rowsOp("decode", codec, desc, L, nRows, headDim, dst, rowsView(src, L, srcRow, nRows, "src"));
    },

    attend(a: AttendArgs) {
      sizes("attend", { headDim: a.headDim, nRows: a.nRows, nSlots: a.nSlots });
      const d = a.headDim;
      const kd = codecDesc(a.kCodec, d, k);
      const vd = codecDesc(a.vCodec, d, k);
      const kk = kd < 0 ? undefined : kindOf(kd);
      const vk = vd < 0 ? undefined : kindOf(vd);
      // ggml keys or values pair in the kernel only with the kinds attend-ggml.ts reads
      const unpaired =
        ((kd & 15) === KIND_GGML && !vk?.pairsWithGgml) || ((vd & 15) === KIND_GGML && !kk?.pairsWithGgml);
      if (!kk || !vk || unpaired || a.softcap !== undefined) {
        // No kernel for this codec, or soft-capped scores (Gemma 2): the ref attend, counted.
        countFallback(exec, a.softcap !== undefined ? "attend (soft-capping)" : "attend");
        refAttend(a);
        return;
      }
      // query: q8w (src/quant/q8-weights.ts): the kernel rounds the weights over int8 / int4
      // values (assembly/attend-q8w.ts) where they take its fused path (groups of whole 16s)
      // and the keys are not ggml blocks or TurboQuant_prod; other such calls run through ref
      // (counted), never with f32 weights. Value descriptor flag: attend.ts Q8W_FLAG.
      const q8w = a.q8?.weights ? q8wValues(a.vCodec, d) : null;
      if (
        q8w &&
        (q8w.group % 16 !== 0 || d % q8w.group !== 0 || (kd & 15) === KIND_GGML || kk.attend !== "attend")
      ) {
        countFallback(exec, "attend (q8w weights)");
        refAttend(a);
        return;
      }
      if (a.nRows === 0) return;
      need(a.q, a.nRows * d, "q");
      need(a.qPos, a.nRows, "qPos");
      need(a.out, a.nRows * d, "out");
      need(a.slotPos, a.nSlots, "slotPos");
      if (a.probs) need(a.probs, a.nRows * a.nSlots, "probs");
      const kr = rowsView(a.k, a.kCodec.layout(d), 0, a.nSlots, "k");
      const vr = rowsView(a.v, a.vCodec.layout(d), 0, a.nSlots, "v");
      const m = new Marshal(heap);
      const args = [
        kd,
        q8w ? vd | (1 << 12) : vd,
        d,
        m.ptr(a.q.subarray(0, a.nRows * d), "in"),
        m.ptr(a.qPos.subarray(0, a.nRows), "in"),
        a.nRows,
        m.ptr(kr.payload, "in"),
        m.ptr(kr.scales, "in"),
        // TurboQuant rows have no zero-points: the kernel reads their codebook table there
        kk.table ? tableOf(a.kCodec, kd, d) : m.ptr(kr.zeros, "in"),
        m.ptr(vr.payload, "in"),
        m.ptr(vr.scales, "in"),
        vk.table ? tableOf(a.vCodec, vd, d) : m.ptr(vr.zeros, "in"),
        m.ptr(a.slotPos.subarray(0, a.nSlots), "in"),
        a.nSlots,
        a.scale,
        m.ptr(a.out.subarray(0, a.nRows * d), "out"),
        a.probs ? m.ptr(a.probs.subarray(0, a.nRows * a.nSlots), "out") : 0,
      ];
      if (kk.attend === "attendTurboQjl" || vk.attend === "attendTurboQjl") {
        // TurboQuant_prod keys or values (assembly/turbo-qjl.ts; f32 queries, one thread).
        const scratch = heap.scratch(k.attendQjlScratchBytes(a.nSlots, d));
        try {
          k.attendTurboQjl(...args, scratch);
        } finally {
          heap.release(scratch);
        }
        m.finish();
        return;
      }
      // query: q8 codes for the integer scores (the kernel uses them for int8/int4 keys in
      // groups of whole 32s, and attends over q = their dequantized rows otherwise)
      const q8 = a.q8 && d % 32 === 0 ? a.q8 : undefined;
      const q8Args = q8
        ? [
            m.ptr(new Uint8Array(q8.codes.buffer, q8.codes.byteOffset, a.nRows * d), "in"),
            m.ptr(q8.scales.subarray(0, a.nRows * (d / 32)), "in"),
          ]
        : [0, 0];
      // Fewest slots per tile when split by slots (amortises the merge and the handoff).
      const ATTEND_MIN_SLOTS_PER_TILE = 512;
      // Decode (few query rows, many slots, no probabilities): the slot range is split across
      // threads (flash-decoding), each tile attending all rows over its slots, merged after;
      // a row split would break the GQA row blocks and read every K/V row once per tile.
      const slotTiles = Math.min(4 * threads, Math.floor(a.nSlots / ATTEND_MIN_SLOTS_PER_TILE));
      if (pool && !a.probs && a.nRows <= 16 && slotTiles >= 2) {
        // q8w: tiles at multiples of 32 slots, so that weight blocks do not straddle them
        const per = q8w ? 32 * Math.ceil(a.nSlots / slotTiles / 32) : Math.ceil(a.nSlots / slotTiles);
        const nTiles = Math.ceil(a.nSlots / per);
        const partBytes = k.attendPartFloats(a.nRows, d) * 4;
        const parts = heap.scratch(partBytes * nTiles);
        try {
          const outPtr = args[15]!;
          args[15] = parts;
          pool.run(OP_ATTEND, [...args, -per, ...q8Args], nTiles, k.attendScratchBytes(per, d));
          k.attendMerge(parts, nTiles, a.nRows, d, outPtr);
        } finally {
          heap.release(parts);
        }
        m.finish();
        return;
      }
      const scratchBytes = k.attendScratchBytes(a.nSlots, d);
      // Query rows are independent: tiles of rows go to threads when there is enough work.
      if (pool && a.nRows >= 2 && a.nRows * a.nSlots * d >= 1 << 16) {
        const per = Math.ceil(a.nRows / (4 * threads));
        pool.run(OP_ATTEND, [...args, per, ...q8Args], Math.ceil(a.nRows / per), scratchBytes);
      } else {
        const scratch = heap.scratch(scratchBytes);
        runTile(k, OP_ATTEND, new Float64Array([...args, a.nRows, ...q8Args]), 0, scratch);
        heap.release(scratch);
      }
      m.finish();
    },

    matmul(out, x, w, n, dIn, dOut, bias) {
      sizes("matmul", { n, dIn, dOut });
      // weight type: 0 f32, 1 f16, 2 bf16, 3 q8_0 (widened in registers, assembly/matmul.ts)
      const type = matrixType(w);
      const wt = { f32: 0, f16: 1, bf16: 2, q8_0: 3 }[type];
      if (wt === 3 && dIn % 32 !== 0)
        throw new ShapeError(`matmul: Q8_0 weights need dIn divisible by 32, got ${dIn}`);
      if (n === 0 || dOut === 0) return;
      need(x, n * dIn, "x");
      const wLen = storedLength(type, dOut * dIn);
      need(w, wLen, "w");
      need(out, n * dOut, "out");
      if (bias) need(bias, dOut, "bias");
      const m = new Marshal(heap);
      const po = m.ptr(out.subarray(0, n * dOut), "out");
      const px = m.ptr(x.subarray(0, n * dIn), "in");
      const pw = m.ptr(w.subarray(0, wLen), "in");
      const pb = bias ? m.ptr(bias.subarray(0, dOut), "in") : 0;
      // Tiles of output rows (weight rows) go to threads: each streams its own rows of w.
      // Tiles are even-sized so the kernel's 2-row register blocks stay whole. 8 tiles per
      // thread: a thread that is descheduled or starts late leaves at most 1/16 of the job (at
      // 2 threads) for the others to wait on; a tile costs one JS->wasm call and one Atomics.add.
      // 16-bit weights and several tokens: each thread widens a tile of rows into its scratch
      // once and runs the f32 kernel over it (assembly/matmul.ts widenedTiles); f16 and fewer
      // tokens: the scratch holds x scaled by 2^112 (matvecF16).
      const scratchBytes = wt !== 0 && (n >= 4 || wt === 1) ? k.matmulScratchBytes(dIn, n) : 0;
      if (pool && n * dIn * dOut >= 1 << 18) {
        const per = 2 * Math.max(4, Math.ceil(dOut / (2 * 8 * threads)));
        pool.run(OP_MATMUL, [po, px, pw, pb, n, dIn, dOut, per, wt], Math.ceil(dOut / per), scratchBytes);
      } else if (wt === 0) k.matmul(po, px, pw, pb, n, dIn, dOut, 0, dOut);
      else {
        const scratch = scratchBytes ? heap.scratch(scratchBytes) : 0;
        try {
          (wt === 1 ? k.matmulF16 : wt === 2 ? k.matmulBf16 : k.matmulQ8_0)(
            po,
            px,
            pw,
            pb,
            n,
            dIn,
            dOut,
            0,
            dOut,
            scratch,
          );
        } finally {
          if (scratch) heap.release(scratch);
        }
      }
      m.finish();
    },

    rmsnorm(out, x, w, n, dim, eps) {
      sizes("rmsnorm", { n, dim });
      if (n === 0) return;
      need(x, n * dim, "x");
      need(out, n * dim, "out");
      need(w, dim, "w");
      const m = new Marshal(heap);
      const po = m.ptr(out.subarray(0, n * dim), "out");
      const px = m.ptr(x.subarray(0, n * dim), "in");
      const pw = m.ptr(w.subarray(0, dim), "in");
      // Rows are independent: split them across threads for prefill-sized calls.
      if (pool && n >= 2 && n * dim >= POOL_ELEMS) {
        const per = Math.ceil(n / (2 * threads));
        pool.run(OP_RMSNORM, [po, px, pw, n, dim, eps, per], Math.ceil(n / per), 0);
      } else k.rmsnorm(po, px, pw, n, dim, eps);
      m.finish();
    },

    rope(x, positions, n, nHeads, headDim, invFreq) {
      sizes("rope", { n, nHeads, headDim });
      if (n === 0) return;
      const len = n * nHeads * headDim;
      need(x, len, "x");
      need(positions, n, "positions");
      need(invFreq, headDim >> 1, "invFreq");
      const m = new Marshal(heap);
      const scratch = ensureOpScratch(8 * headDim + 16);
      k.rope(
        m.ptr(x.subarray(0, len), "inout"),
        m.ptr(positions.subarray(0, n), "in"),
        n,
        nHeads,
        headDim,
        m.ptr(invFreq.subarray(0, headDim >> 1), "in"),
        scratch,
      );
      m.finish();
    },

    swiglu(out, gate, up, n) {
      sizes("swiglu", { n });
      if (n === 0) return;
      need(gate, n, "gate");
      need(up, n, "up");
      need(out, n, "out");
      const m = new Marshal(heap);
      const po = m.ptr(out.subarray(0, n), "out");
      const pg = m.ptr(gate.subarray(0, n), "in");
      const pu = m.ptr(up.subarray(0, n), "in");
      if (pool && n >= 2 * POOL_ELEMS) {
        // Tiles of whole f32x4 groups (multiples of 4 elements keep the SIMD body on every tile).
        const per = 4 * Math.ceil(n / (4 * 2 * threads));
        pool.run(OP_SWIGLU, [po, pg, pu, n, per], Math.ceil(n / per), 0);
      } else k.swiglu(po, pg, pu, n);
      m.finish();
    },

    addInPlace(x, y, n) {
      sizes("addInPlace", { n });
      if (n === 0) return;
      need(x, n, "x");
      need(y, n, "y");
      const m = new Marshal(heap);
      const px = m.ptr(x.subarray(0, n), "inout");
      const py = m.ptr(y.subarray(0, n), "in");
      if (pool && n >= 2 * POOL_ELEMS) {
        const per = 4 * Math.ceil(n / (4 * 2 * threads));
        pool.run(OP_ADD, [px, py, n, per], Math.ceil(n / per), 0);
      } else k.addInPlace(px, py, n);
      m.finish();
    },

    swapAxes01(out, x, a, b, d) {
      sizes("swapAxes01", { a, b, d });
      const len = a * b * d;
      if (len === 0) return;
      need(x, len, "x");
      need(out, len, "out");
      const m = new Marshal(heap);
      const po = m.ptr(out.subarray(0, len), "out");
      const px = m.ptr(x.subarray(0, len), "in");
      // Tiles of output rows (the first axis of out): each thread writes its own contiguous part.
      if (pool && b >= 2 && len >= 2 * POOL_ELEMS) {
        const per = Math.ceil(b / (2 * threads));
        pool.run(OP_SWAP, [po, px, a, b, d, per], Math.ceil(b / per), 0);
      } else k.swapAxes01(po, px, a, b, d, 0, b);
      m.finish();
    },

    hadamard(x, nRows, n, signs, inverse) {
      sizes("hadamard", { nRows, n });
      if (nRows === 0 || n === 0) return;
      need(x, nRows * n, "x");
      need(signs, n, "signs");
      const m = new Marshal(heap);
      k.hadamardRows(
        m.ptr(x.subarray(0, nRows * n), "inout"),
        nRows,
        n,
        m.ptr(signs.subarray(0, n), "in"),
        inverse ? 1 : 0,
      );
      m.finish();
    },

    nll(out, logits, targets, nRows, vocab) {
      sizes("nll", { nRows, vocab });
      if (nRows === 0) return;
      need(logits, nRows * vocab, "logits");
      need(targets, nRows, "targets");
      need(out, nRows, "out");
      for (let r = 0; r < nRows; r++) {
        const t = targets[r]!;
        if (!(t >= 0 && t < vocab))
          throw new ShapeError(`nll: target ${t} at row ${r} is outside the vocabulary [0, ${vocab})`);
      }
      // (nRows) f64 results, then (nRows) i32 targets, in the op scratch.
      const base = ensureOpScratch(12 * nRows + 16);
      const pt = base + 8 * nRows;
      new Int32Array(heap.buffer, pt, nRows).set(targets.subarray(0, nRows));
      const m = new Marshal(heap);
      const pl = m.ptr(logits.subarray(0, nRows * vocab), "in");
      // One vocab-long row is ~50-600 us of exp: worth a pool job from two rows up.
      if (pool && nRows >= 2 && nRows * vocab >= POOL_ELEMS) {
        const per = Math.ceil(nRows / (4 * threads));
        pool.run(OP_NLL, [base, pl, pt, vocab, nRows, per], Math.ceil(nRows / per), 0);
      } else k.nllRows(base, pl, pt, vocab, 0, nRows);
      m.finish();
      out.set(new Float64Array(heap.buffer, base, nRows));
    },

    dispose() {
      pool?.dispose();
      turboTables.dispose();
      if (opScratch) heap.release(opScratch);
      opScratch = 0;
      opScratchBytes = 0;
    },
  };
  Object.assign(exec, wasmChannelOps(heap, k)); // channel-axis key ops (wasm-channel.ts), if built
  return withFallbacks(exec, createRefExecutor());
}
