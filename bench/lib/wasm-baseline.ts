/**
 * The bench's own WASM SIMD read pass and copy (AssemblyScript source below, compiled at
 * start-up; kept as a string so tsc and Biome do not read it as TypeScript): the "measured read bandwidth" that attention
 * is compared with. Plain JS cannot issue 128-bit loads, so a JS sum would understate what
 * memory delivers and flatter every kernel compared with it.
 */
import asc from "assemblyscript/asc";

export interface WasmBaseline {
  memory: WebAssembly.Memory;
  /** Heap base after reserving `bytes`. */
  reserve(bytes: number): number;
  readSum(ptr: number, n: number): number;
  copy(dst: number, src: number, bytes: number): void;
}

/**
 * The read pass itself (AssemblyScript): shared with wasm-baseline-mt.ts so the 1- and
 * multi-thread read bandwidths come from the very same loop.
 */
export const READ_SUM_SOURCE = `
/** Sum of n f32 at ptr (n a multiple of 16), with 4 independent vector accumulators. */
export function readSum(ptr: usize, n: i32): f32 {
  let a0 = f32x4.splat(0);
  let a1 = f32x4.splat(0);
  let a2 = f32x4.splat(0);
  let a3 = f32x4.splat(0);
  const end = ptr + (<usize>n << 2);
  for (let p = ptr; p < end; p += 64) {
    a0 = f32x4.add(a0, v128.load(p));
    a1 = f32x4.add(a1, v128.load(p, 16));
    a2 = f32x4.add(a2, v128.load(p, 32));
    a3 = f32x4.add(a3, v128.load(p, 48));
  }
  const s = f32x4.add(f32x4.add(a0, a1), f32x4.add(a2, a3));
  return f32x4.extract_lane(s, 0) + f32x4.extract_lane(s, 1) + f32x4.extract_lane(s, 2) + f32x4.extract_lane(s, 3);
}
`;

const SOURCE = `
// Bandwidth baselines compiled by bench/lib/wasm-baseline.ts (not part of kvlab's kernels):
// a SIMD read pass that sums f32s and a bulk copy, both over this module's own memory.

${READ_SUM_SOURCE}
/** memory.copy of bytes from src to dst. */
export function copy(dst: usize, src: usize, bytes: usize): void {
  memory.copy(dst, src, bytes);
}

/** Grow memory so that it holds at least \`bytes\`; returns the heap base (first free byte). */
export function reserve(bytes: usize): usize {
  const base = (__heap_base + 63) & ~63;
  const need = <i32>((base + bytes + 0xffff) >>> 16);
  const have = memory.size();
  if (need > have) memory.grow(need - have);
  return base;
}
`;

export async function loadWasmBaseline(): Promise<WasmBaseline> {
  const { binary, error, stderr } = await asc.compileString(SOURCE, {
    optimizeLevel: 3,
    runtime: "stub",
    enable: ["simd"],
    noAssert: true,
  });
  if (error || !binary)
    throw new Error(`compiling the baseline kernels failed: ${error?.message}\n${stderr}`);
  // Compiled asynchronously on purpose: measured here (node 20), a module from the synchronous
  // `new WebAssembly.Module` stayed in V8's baseline tier (Liftoff) and read 256 KiB at ~1-2 GB/s
  // instead of ~60 GB/s, which would have made every kernel look fast next to it.
  const instance = new WebAssembly.Instance(await WebAssembly.compile(binary as Uint8Array<ArrayBuffer>), {
    env: {
      abort: () => {
        throw new Error("baseline wasm abort");
      },
    },
  });
  const ex = instance.exports as unknown as {
    memory: WebAssembly.Memory;
    readSum(ptr: number, n: number): number;
    copy(dst: number, src: number, bytes: number): void;
    reserve(bytes: number): number;
  };
  return {
    memory: ex.memory,
    reserve: (bytes) => ex.reserve(bytes) >>> 0,
    readSum: ex.readSum,
    copy: ex.copy,
  };
}
