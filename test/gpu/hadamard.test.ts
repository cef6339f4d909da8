/**
 * The WGSL randomized Hadamard rotation (src/gpu/kernels/hadamard.ts) equals the reference
 * (src/quant/hadamard.ts apply / invert) bit for bit, for power-of-two head sizes (even and odd
 * log2, where 1/sqrt(size) is an f64 factor the kernel reproduces in integers) and for sizes
 * split into power-of-two blocks, on rows from 1e-30 to 1e30 in magnitude.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { rotationGroups, rotationKernel, rotationParams } from "../../src/gpu/kernels/hadamard.ts";
import { HadamardRotation } from "../../src/quant/hadamard.ts";
import { gpuTestEnv, rng } from "./gpu-helper.ts";

const env = await gpuTestEnv();

test("WGSL Hadamard rotation (forward and inverse) equals hadamard.ts bit for bit", {
  skip: env.skip,
}, async () => {
  const ops = env.ops!;
  const rt = ops.rt;
  for (const d of [1, 2, 3, 8, 16, 24, 32, 33, 64, 65, 96, 100, 128, 256]) {
    for (const seed of [d * 101]) {
      const rot = new HadamardRotation(d, seed);
      const r = rng(d * 7 + seed);
      const nRows = 37;
      const x = new Float32Array(nRows * d);
      for (let row = 0; row < nRows; row++) {
        const scale = 10 ** (r() * 60 - 30);
        for (let i = 0; i < d; i++) x[row * d + i] = (r() * 2 - 1) * scale;
      }
      for (const inverse of [false, true]) {
        const want = x.slice();
        if (inverse) rot.invert(want, nRows);
        else rot.apply(want, nRows);
        const base = 5; // rows start at a word offset, as the cache's buffers use
        const buf = rt.buffer((base + x.length) * 4, "test rotation");
        rt.upload(buf, x, base * 4);
        const k = ops.kernel(() => rotationKernel(rot, inverse), `test-rot:${d}:${seed}:${inverse}`);
        rt.run([
          { kernel: k, params: rotationParams(nRows, base), buffers: [buf], groups: rotationGroups(nRows) },
        ]);
        const [got] = await rt.read([{ buf, offset: base * 4, bytes: x.length * 4 }]);
        buf.destroy();
        const g = new Uint32Array(got!);
        const w = new Uint32Array(want.buffer);
        let bad = -1;
        for (let i = 0; i < g.length && bad < 0; i++) if (g[i] !== w[i]) bad = i;
        assert.equal(
          bad,
          -1,
          `d=${d} seed ${seed} ${inverse ? "inverse" : "forward"}: element ${bad}: ${new Float32Array(got!)[bad]} vs ${want[bad]}`,
        );
      }
    }
  }
});
