/**
 * The composed stores of one (layer, KV head) (src/cache/stores/head.ts) on every available
 * executor: a Head of f32 keys (CodecRows) and f32 values behind a value window (ValueResidual),
 * driven by appends (growth from capacity 1), window flushes and swap-remove evictions. Every
 * retained slot must decode to the row appended at its position (f32: exact), the window must
 * hold exactly the newest `residual` retained values, and addMemory must equal the bytes counted
 * here from the format (4 bytes per element, window rows in part residual).
 */
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { CacheAccount, emptyParts } from "../../src/cache/accounting.ts";
import { CodecRows, HeadStore } from "../../src/cache/head-store.ts";
import { Head } from "../../src/cache/stores/head.ts";
import { ValueResidual } from "../../src/cache/value-residual.ts";
import { makeCodec } from "../../src/quant/registry.ts";
import { availableExecutors, disposeTestExecutors, f32On } from "../helpers/executors.ts";

after(disposeTestExecutors);

const executors = await availableExecutors();
const d = 5;
const residual = 3;
const row = (pos: number, side: number) => Array.from({ length: d }, (_, i) => pos * 10 + i + side * 0.5);

for (const exec of executors) {
  describe(`Head (CodecRows keys, ValueResidual values) on ${exec.name}`, () => {
    test("appends, flushes and evictions keep every slot's rows, window and bytes", async () => {
      const f32 = makeCodec("f32");
      const slots = new HeadStore(exec, f32.layout(d), f32.layout(d), 1);
      const values = new ValueResidual(exec, f32, slots, d, residual);
      const head = new Head(slots, new CodecRows(exec, f32, slots, "k", d), values);
      const account = new CacheAccount(1);
      try {
        let pos = 0;
        // Chunks of 1..4 tokens; after each, evict two slots (the oldest and the newest but one).
        for (const n of [1, 4, 2, 3, 1, 4, 4, 2]) {
          const positions = Int32Array.from({ length: n }, (_, i) => pos + i);
          const k = f32On(
            exec,
            positions.reduce<number[]>((a, p) => a.concat(row(p, 0)), []),
          );
          const v = f32On(
            exec,
            positions.reduce<number[]>((a, p) => a.concat(row(p, 1)), []),
          );
          head.append(k, v, positions, n, account);
          exec.free(k);
          exec.free(v);
          pos += n;
          if (slots.nSlots > 4) {
            const byAge = Array.from({ length: slots.nSlots }, (_, j) => j).sort(
              (a, b) => slots.positions[a]! - slots.positions[b]!,
            );
            head.remove([byAge[0]!, byAge[byAge.length - 2]!]);
          }
          const nS = slots.nSlots;
          const kd = new Float32Array(nS * d);
          const vd = new Float32Array(nS * d);
          head.keys.decode(0, nS, kd);
          head.values.decode(0, nS, vd);
          for (let j = 0; j < nS; j++) {
            const p = slots.positions[j]!;
            assert.deepEqual(
              [...kd.subarray(j * d, (j + 1) * d)],
              row(p, 0),
              `key of slot ${j} (position ${p})`,
            );
            assert.deepEqual(
              [...vd.subarray(j * d, (j + 1) * d)],
              row(p, 1),
              `value of slot ${j} (position ${p})`,
            );
          }
          // The window holds the newest min(residual, appended since) retained values: here,
          // at most `residual`, and every retained slot newer than the window's oldest is in it.
          const inWindow = Array.from({ length: nS }, (_, j) => values.inResid[j] === 1);
          const nWin = inWindow.filter(Boolean).length;
          assert.equal(nWin, values.nResidual);
          assert.ok(nWin <= residual, `window of ${nWin} > ${residual}`);
          const p = emptyParts();
          head.addMemory(p, true);
          assert.equal(p.slots, nS);
          assert.equal(p.payload, nS * d * 4 + (nS - nWin) * d * 4, "keys all, values outside the window");
          assert.equal(p.residual, nWin * d * 4, "window values at f32");
          assert.equal(p.scales + p.zeros + p.indices, 0);
        }
      } finally {
        head.dispose();
      }
    });
  });
}
