// kvlab WASM kernels: one op family per file, re-exported here.
export function abiVersion(): i32 {
  return 1;
}
