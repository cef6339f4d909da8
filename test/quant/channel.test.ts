/**
 * Channel-axis quantization (KIVI): per channel over a group of tokens, round trip within
 * half a step, codes independent per token row, non-finite inputs contained; and on keys with
 * outlier channels it beats per-token quantization at the same bit width.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import {
  type ChannelBits,
  channelCodeBytes,
  channelErrorBound,
  dequantizeChannelRow,
  quantizeChannelGroup,
} from "../../src/quant/channel.ts";
import { f16ToF32 } from "../../src/quant/half.ts";
import { makeCodec } from "../../src/quant/registry.ts";
import { allocRows } from "../../src/quant/types.ts";

function roundTrip(src: Float32Array, nTok: number, d: number, bits: ChannelBits, symmetric: boolean) {
  const cb = channelCodeBytes(bits, d);
  const codes = new Uint8Array(nTok * cb);
  const scales = new Uint16Array(d);
  const zeros = new Uint16Array(d);
  const offs = Int32Array.from({ length: nTok }, (_, t) => t * cb);
  const stats = quantizeChannelGroup(src, nTok, d, { bits, symmetric }, codes, offs, scales, zeros, 0);
  const out = new Float32Array(nTok * d);
  for (let t = 0; t < nTok; t++)
    dequantizeChannelRow(codes, t * cb, scales, zeros, 0, d, { bits, symmetric }, out, t * d);
  return { out, scales, zeros, stats };
}

fc.configureGlobal({ includeErrorInReport: true });

test("round trip within half a step per channel; the scale fits the channel's range", () => {
  fc.assert(
    fc.property(
      fc.constantFrom<ChannelBits>(2, 4, 8),
      fc.boolean(),
      fc.integer({ min: 1, max: 40 }),
      fc.integer({ min: 1, max: 13 }),
      fc.float32Array({
        minLength: 520,
        maxLength: 520,
        noNaN: true,
        noDefaultInfinity: true,
        min: -1000,
        max: 1000,
      }),
      (bits, symmetric, nTok, d, pool) => {
        const src = pool.subarray(0, nTok * d);
        const { out, scales, zeros } = roundTrip(src, nTok, d, bits, symmetric);
        for (let c = 0; c < d; c++) {
          let lo = Infinity;
          let hi = -Infinity;
          for (let t = 0; t < nTok; t++) {
            lo = Math.min(lo, src[t * d + c]!);
            hi = Math.max(hi, src[t * d + c]!);
          }
          const bound = channelErrorBound(scales, zeros, 0, c, { bits, symmetric });
          const s = f16ToF32(scales[c]!);
          const levels = symmetric ? 2 ** (bits - 1) - 1 : 2 ** bits - 1;
          // Asymmetric: the grid starts at m = the f16 at or below min, so its range is max - m.
          const range = symmetric ? Math.max(Math.abs(lo), Math.abs(hi)) : hi - f16ToF32(zeros[c]!);
          // Not vacuous: the step is within an f16 rounding of range / levels.
          assert.ok(
            s <= (range / levels) * 1.002 + 2 ** -24,
            `channel ${c}: scale ${s} too large for range ${range}`,
          );
          for (let t = 0; t < nTok; t++) {
            const e = Math.abs(out[t * d + c]! - src[t * d + c]!);
            assert.ok(e <= bound, `t=${t} c=${c}: error ${e} > ${bound}`);
          }
        }
      },
    ),
    { numRuns: 300 },
  );
});

test("non-finite inputs are counted and do not spoil their channel", () => {
  const d = 4;
  const src = Float32Array.from([
    1,
    2,
    3,
    4,
    Number.NaN,
    2.5,
    Number.POSITIVE_INFINITY,
    4.5,
    0,
    3,
    3.5,
    Number.NEGATIVE_INFINITY,
  ]);
  const { out, stats } = roundTrip(src, 3, d, 4, false);
  assert.equal(stats.nonFinite, 3);
  assert.ok(out.every(Number.isFinite));
  assert.ok(Math.abs(out[1]! - 2) < 0.05 && Math.abs(out[5]! - 2.5) < 0.05);
  assert.ok(Math.abs(out[6]! - 3.5) < 0.05, "+Inf decodes to the channel's finite max"); // channel 2 max = 3.5
});

test("on keys with outlier channels, channel-axis int2 has lower error than per-token int2", () => {
  const d = 32;
  const nTok = 32;
  let s = 7;
  const r = () => ((s = (s * 48271) % 2147483647) / 2147483647) * 2 - 1;
  // A few channels carry large, stable magnitudes, as real keys do (KIVI Fig. 2).
  const src = Float32Array.from({ length: nTok * d }, (_, i) =>
    i % d === 3 ? 20 + r() : i % d === 17 ? -15 + r() : r(),
  );
  const chan = roundTrip(src, nTok, d, 2, false).out;
  const tok = makeCodec({ type: "int2", group: 32, symmetric: false });
  const rows = allocRows(tok.layout(d), nTok);
  tok.encode(src, nTok, d, rows, 0);
  const perTok = new Float32Array(nTok * d);
  tok.decode(rows, 0, nTok, d, perTok);
  let eChan = 0;
  let eTok = 0;
  for (let i = 0; i < src.length; i++) {
    eChan += (chan[i]! - src[i]!) ** 2;
    eTok += (perTok[i]! - src[i]!) ** 2;
  }
  assert.ok(eChan < eTok / 4, `channel-axis error ${eChan} should be far below per-token ${eTok}`);
});
