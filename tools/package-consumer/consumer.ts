// Type-checked under `strict` against the installed package's declarations (tools/check-package.sh).
import { type CacheMemory, createCache, type KVShape, resolveCacheSpec } from "kvlab";

const shape: KVShape = { nLayers: 1, nHeads: 2, nKvHeads: 1, headDim: 8, maxTokens: 16 };
const cache = await createCache({ codec: { type: "int4", group: 8 } }, shape);
const memory: CacheMemory = cache.memory();
const bits: number = memory.bitsPerElement;
console.log(bits, resolveCacheSpec("int8").keys.type);
