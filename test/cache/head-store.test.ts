/**
 * HeadStore on every available executor: growth by doubling keeps every stored row (K, V codes
 * and positions) intact, including growth from a capacity of 1 and by more than double at once;
 * moveSlot moves K, V and position together and leaves other slots alone.
 */
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { HeadStore } from "../../src/cache/head-store.ts";
import type { Executor } from "../../src/kernels/executor.ts";
import { makeCodec } from "../../src/quant/registry.ts";
import type { Codec, EncodedRows, RowLayout } from "../../src/quant/types.ts";
import { availableExecutors, disposeTestExecutors, f32On } from "../helpers/executors.ts";

after(disposeTestExecutors);

const executors = await availableExecutors();
const headDim = 13; // odd: int4 rows end in a half-used byte

/** Row r's bytes (payload, scales, zeros) as plain arrays, for comparison. */
function rowBytes(rows: EncodedRows, L: RowLayout, r: number): number[] {
  return [
    ...rows.payload.subarray(r * L.payloadBytes, (r + 1) * L.payloadBytes),
    ...rows.scales.subarray(r * L.scalesPerRow, (r + 1) * L.scalesPerRow),
    ...rows.zeros.subarray(r * L.zerosPerRow, (r + 1) * L.zerosPerRow),
  ];
}

/** Append n distinct rows (token t has values depending on t) with position 10 * t. */
async function appendRows(exec: Executor, store: HeadStore, kc: Codec, vc: Codec, n: number): Promise<void> {
  store.reserve(n);
  const first = store.nSlots;
  const k = f32On(
    exec,
    Array.from({ length: n * headDim }, (_, i) => Math.sin(first * 7 + i) * (1 + first)),
  );
  const v = f32On(
    exec,
    Array.from({ length: n * headDim }, (_, i) => Math.cos(first * 3 + i) - first),
  );
  await exec.encodeRows(kc, k, n, headDim, store.k, first);
  await exec.encodeRows(vc, v, n, headDim, store.v, first);
  exec.free(k);
  exec.free(v);
  for (let t = 0; t < n; t++) store.positions[first + t] = 10 * (first + t);
  store.nSlots += n;
}

for (const exec of executors) {
  describe(`HeadStore on ${exec.name}`, () => {
    const kc = makeCodec({ type: "int4", group: 8, symmetric: false });
    const vc = makeCodec("f16");
    const kL = kc.layout(headDim);
    const vL = vc.layout(headDim);

    test("growth keeps every row and position", async () => {
      const store = new HeadStore(exec, kL, vL, 1);
      try {
        const snapshots: { k: number[]; v: number[]; pos: number }[] = [];
        for (const n of [1, 1, 3, 9, 2, 20]) {
          await appendRows(exec, store, kc, vc, n);
          for (let r = snapshots.length; r < store.nSlots; r++)
            snapshots.push({
              k: rowBytes(store.k, kL, r),
              v: rowBytes(store.v, vL, r),
              pos: store.positions[r]!,
            });
          assert.ok(store.capacity >= store.nSlots);
          for (let r = 0; r < store.nSlots; r++) {
            assert.deepEqual(
              rowBytes(store.k, kL, r),
              snapshots[r]!.k,
              `K row ${r} after growing to ${store.capacity}`,
            );
            assert.deepEqual(rowBytes(store.v, vL, r), snapshots[r]!.v, `V row ${r}`);
            assert.equal(store.positions[r], snapshots[r]!.pos, `position of row ${r}`);
          }
        }
        assert.equal(store.nSlots, 36);
      } finally {
        store.dispose();
      }
    });

    test("moveSlot moves K, V and position together", async () => {
      const store = new HeadStore(exec, kL, vL, 4);
      try {
        await appendRows(exec, store, kc, vc, 6);
        const before = Array.from({ length: 6 }, (_, r) => ({
          k: rowBytes(store.k, kL, r),
          v: rowBytes(store.v, vL, r),
          pos: store.positions[r]!,
        }));
        store.moveSlot(5, 1);
        for (let r = 0; r < 6; r++) {
          const want = r === 1 ? before[5]! : before[r]!;
          assert.deepEqual(rowBytes(store.k, kL, r), want.k, `K slot ${r}`);
          assert.deepEqual(rowBytes(store.v, vL, r), want.v, `V slot ${r}`);
          assert.equal(store.positions[r], want.pos, `position of slot ${r}`);
        }
      } finally {
        store.dispose();
      }
    });
  });
}
