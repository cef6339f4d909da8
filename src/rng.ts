/**
 * The one seeded PRNG of kvlab (mulberry32): Hadamard signs, randomized policies, task layouts
 * and sampling draw from it, so a seed reproduces a run everywhere. Floats in [0, 1).
 * (synth.ts keeps its own xorshift: changing it would change every synthetic model's weights.)
 */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
