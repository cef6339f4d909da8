/**
 * A thin loader for build/kvlab.wasm over WebAssembly.instantiate. We do not use
 * @assemblyscript/loader: its value is marshalling AssemblyScript managed objects (strings,
 * arrays with runtime headers), while our kernels take raw pointers into an arena that the JS
 * side manages, and the module runs with the stub runtime and an imported shared memory.
 *
 * The memory is shared (SharedArrayBuffer-backed) so that worker threads can instantiate the
 * same module over it, and so that typed-array views handed out never detach when it grows.
 */
import { defaultWasmLocation, readBytes } from "../platform/host.ts";

/**
 * What attend and attendPart take ahead of their slot range: the K/V descriptors, head size,
 * query rows and positions, the K and V rows' payload, scales and zeros, the slots' positions.
 */
export type AttendRows = [
  kDesc: number,
  vDesc: number,
  headDim: number,
  q: number,
  qPos: number,
  nRows: number,
  kPay: number,
  kSc: number,
  kZe: number,
  vPay: number,
  vSc: number,
  vZe: number,
  slotPos: number,
];

/** The f32 matmul's arguments: out (n, dOut) = x (n, dIn) w^T + bias, over output rows [o0, o1). */
type MatmulArgs = [
  out: number,
  x: number,
  w: number,
  bias: number,
  n: number,
  dIn: number,
  dOut: number,
  o0: number,
  o1: number,
];

/** Raw exports of assembly/index.ts (pointers are byte offsets into the shared memory). */
export interface KvlabWasmExports {
  abiVersion(): number;
  heapBase(): number;
  encodeFloat(kind: number, src: number, n: number, dst: number, stats: number): void;
  decodeFloat(kind: number, src: number, n: number, dst: number): void;
  encodeInt(
    bits: number,
    sym: number,
    groupSize: number,
    src: number,
    nRows: number,
    headDim: number,
    payload: number,
    scales: number,
    zeros: number,
    stats: number,
  ): void;
  decodeInt(
    bits: number,
    sym: number,
    groupSize: number,
    payload: number,
    scales: number,
    zeros: number,
    nRows: number,
    headDim: number,
    dst: number,
  ): void;
  /** TurboQuant rows (assembly/codec-turbo.ts): lo/hi bits, the codebook table (src/kernels/wasm-turbo.ts). */
  encodeTurbo(
    lo: number,
    hi: number,
    table: number,
    src: number,
    nRows: number,
    headDim: number,
    payload: number,
    norms: number,
    stats: number,
  ): void;
  decodeTurbo(
    lo: number,
    hi: number,
    table: number,
    payload: number,
    norms: number,
    nRows: number,
    headDim: number,
    dst: number,
  ): void;
  /**
   * ggml block types (assembly/codec-ggml.ts): t = 0 q4_0, 1 q4_1, 2 q5_0, 3 q5_1, 4 q8_0,
   * 5 iq4_nl. Optional: absent in builds older than the ggml kernels (the types then run on ref).
   */
  encodeGgml?(
    t: number,
    src: number,
    nRows: number,
    headDim: number,
    payload: number,
    scales: number,
    zeros: number,
    stats: number,
  ): void;
  decodeGgml?(
    t: number,
    payload: number,
    scales: number,
    zeros: number,
    nRows: number,
    headDim: number,
    dst: number,
  ): void;
  /** TurboQuant_prod rows (assembly/turbo-qjl.ts); work: 12 * headDim + 32 bytes. */
  encodeTurboQjl(
    lo: number,
    hi: number,
    table: number,
    src: number,
    nRows: number,
    headDim: number,
    payload: number,
    scales: number,
    stats: number,
    work: number,
  ): void;
  decodeTurboQjl(
    lo: number,
    hi: number,
    table: number,
    payload: number,
    scales: number,
    nRows: number,
    headDim: number,
    dst: number,
  ): void;
  attendQjlScratchBytes(nSlots: number, headDim: number): number;
  /** Attention with TurboQuant_prod keys and/or values: attend's first 17 arguments, then scratch. */
  attendTurboQjl(...args: number[]): void;
  /** Randomized Hadamard rotation of rows in place (assembly/hadamard.ts). */
  hadamardRows(x: number, nRows: number, n: number, signs: number, inverse: number): void;
  attendScratchBytes(nSlots: number, headDim: number): number;
  /** q8Codes, q8Scales (query: q8): the rows' int8 codes (nRows, headDim) and f32 block scales, or 0, 0. */
  attend(
    ...a: [
      ...AttendRows,
      nSlots: number,
      scale: number,
      out: number,
      probs: number,
      scratch: number,
      q8Codes: number,
      q8Scales: number,
    ]
  ): void;
  /** Attention over slots [j0, j1) into a part (outputs, then max and sum per row); see attendMerge. */
  attendPart(
    ...a: [
      ...AttendRows,
      j0: number,
      j1: number,
      scale: number,
      part: number,
      scratch: number,
      q8Codes: number,
      q8Scales: number,
    ]
  ): void;
  /** 4 * a * b through the relaxed i8 x i7 dot (attend-q8.ts): checks the engine's operand order. */
  relaxedDotCheck(a: number, b: number): number;
  attendPartFloats(nRows: number, headDim: number): number;
  attendMerge(parts: number, nParts: number, nRows: number, headDim: number, out: number): void;
  matmul(...a: MatmulArgs): void;
  /** matmul over f16 weights (u16 bit patterns; assembly/matmul.ts); scratch 0 or matmulScratchBytes(dIn, n). */
  matmulF16(...a: [...MatmulArgs, scratch: number]): void;
  /** matmul over bf16 weights. */
  matmulBf16(...a: [...MatmulArgs, scratch: number]): void;
  /** matmul over ggml Q8_0 weights (34-byte blocks; dIn % 32 == 0). */
  matmulQ8_0(...a: [...MatmulArgs, scratch: number]): void;
  /** Per-thread scratch bytes matmulF16/Bf16/Q8_0 take for a call of n tokens (widened rows, or f16's scaled x). */
  matmulScratchBytes(dIn: number, n: number): number;
  rmsnorm(out: number, x: number, w: number, n: number, dim: number, eps: number): void;
  rope(
    x: number,
    positions: number,
    n: number,
    nHeads: number,
    headDim: number,
    invFreq: number,
    scratch: number,
  ): void;
  swiglu(out: number, gate: number, up: number, n: number): void;
  addInPlace(x: number, y: number, n: number): void;
  swapAxes01(out: number, x: number, a: number, b: number, d: number, b0: number, b1: number): void;
  nllRows(out: number, logits: number, targets: number, vocab: number, r0: number, r1: number): void;
}

/** ABI version the JS side was written against (assembly/index.ts abiVersion). */
export const KVLAB_WASM_ABI = 3;

/** build/kvlab.wasm on Node (a path); in a browser, the URL it is fetched from (host.browser.ts). */
export const WASM_PATH: string = String(defaultWasmLocation());

/** Where the kernels come from: a path or URL, the file's bytes, or an already compiled module. */
export type WasmSource = string | URL | ArrayBuffer | ArrayBufferView | WebAssembly.Module;

/** Pages the module declares (asconfig.json initialMemory / maximumMemory). */
const INITIAL_PAGES = 16;
const MAXIMUM_PAGES = 65536;

export interface LoadedWasm {
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  exports: KvlabWasmExports;
}

/** Instantiate a compiled module over a given shared memory (used by the main thread and by workers). */
export async function instantiateKvlab(
  module: WebAssembly.Module,
  memory: WebAssembly.Memory,
): Promise<KvlabWasmExports> {
  const instance = await WebAssembly.instantiate(module, {
    env: {
      memory,
      abort: () => {
        throw new Error("kvlab.wasm aborted (a kernel assertion failed)");
      },
    },
  });
  return instance.exports as unknown as KvlabWasmExports;
}

/** Compile build/kvlab.wasm (or the module `source` names) and instantiate it over a fresh shared memory. */
export async function loadKvlabWasm(source: WasmSource = defaultWasmLocation()): Promise<LoadedWasm> {
  const path =
    typeof source === "string" || source instanceof URL ? String(source) : "kvlab.wasm (given bytes)";
  let module: WebAssembly.Module;
  if (source instanceof WebAssembly.Module) module = source;
  else {
    const bytes =
      typeof source === "string" || source instanceof URL
        ? await readBytes(source)
        : ArrayBuffer.isView(source)
          ? new Uint8Array(source.buffer, source.byteOffset, source.byteLength)
          : new Uint8Array(source);
    module = await WebAssembly.compile(bytes as Uint8Array<ArrayBuffer>);
  }
  const memory = new WebAssembly.Memory({ initial: INITIAL_PAGES, maximum: MAXIMUM_PAGES, shared: true });
  const exports = await instantiateKvlab(module, memory);
  const abi = exports.abiVersion();
  if (abi !== KVLAB_WASM_ABI)
    throw new Error(
      `${path} has ABI ${abi}, expected ${KVLAB_WASM_ABI}: rebuild it with \`npm run asbuild\``,
    );
  return { module, memory, exports };
}
