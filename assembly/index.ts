// kvlab WASM kernels: one op family per file, re-exported here. Kernels take raw pointers into
// the (imported, shared) linear memory; the JS side (src/kernels/wasm.ts) owns allocation.
export function abiVersion(): i32 {
  return 3;
}

/** First byte the JS arena may use (everything below holds this module's static data). */
export function heapBase(): usize {
  return __heap_base;
}

export { encodeFloat, decodeFloat } from "./codec-float";
export { encodeInt, decodeInt } from "./codec-int";
export { encodeGgml, decodeGgml } from "./codec-ggml";
export { encodeTurbo, decodeTurbo } from "./codec-turbo";
export { encodeTurboQjl, decodeTurboQjl, attendTurboQjl, attendQjlScratchBytes } from "./turbo-qjl";
export { hadamardRows } from "./hadamard";
export { attend, attendMerge, attendPart, attendPartFloats, attendScratchBytes } from "./attend";
export { relaxedDotCheck } from "./attend-q8";
export { matmul, matmulBf16, matmulF16, matmulQ8_0, matmulScratchBytes } from "./matmul";
export { rmsnorm, rope, swiglu, addInPlace, swapAxes01 } from "./model-ops";
export {
  channelQuantize,
  channelDecode,
  channelDecodeScratchBytes,
  channelAttend,
  channelAttendScratchBytes,
} from "./channel";
export { nllRows } from "./nll";
