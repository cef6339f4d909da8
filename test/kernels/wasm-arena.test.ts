/** The JS-managed arena over the shared WASM memory: alignment, reuse, coalescing, growth. */
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { Arena } from "../../src/kernels/wasm-arena.ts";
import { wasmExecutor, wasmSkip } from "./wasm-helpers.ts";

function memory(): WebAssembly.Memory {
  return new WebAssembly.Memory({ initial: 1, maximum: 1024, shared: true });
}

test("arena: 16-byte aligned, non-overlapping live blocks under random alloc/free", () => {
  fc.assert(
    fc.property(
      fc.array(fc.oneof(fc.integer({ min: 0, max: 70000 }), fc.constant(-1)), {
        minLength: 1,
        maxLength: 60,
      }),
      fc.integer({ min: 0, max: 1000 }),
      (ops, pick) => {
        const arena = new Arena(memory(), 100);
        const live: { off: number; size: number }[] = [];
        for (const op of ops) {
          if (op < 0 && live.length > 0) {
            const [b] = live.splice(pick % live.length, 1);
            assert.ok(arena.release(b!.off));
          } else if (op >= 0) {
            const off = arena.alloc(op);
            assert.equal(off % 16, 0);
            assert.ok(off >= 100);
            for (const b of live) assert.ok(off + op <= b.off || b.off + b.size <= off, "overlap");
            live.push({ off, size: Math.max(op, 1) });
          }
        }
        const total = live.reduce((s, b) => s + Math.ceil(b.size / 16) * 16, 0);
        assert.equal(arena.bytesInUse, total);
        for (const b of live) arena.release(b.off);
        assert.equal(arena.bytesInUse, 0);
        // Everything freed: the arena shrinks back to its base.
        assert.equal(arena.end, 112);
      },
    ),
    { numRuns: 200 },
  );
});

test("arena: freed blocks are reused and coalesced; growth keeps earlier views valid", () => {
  const mem = memory();
  const arena = new Arena(mem, 0);
  const a = arena.alloc(64);
  const b = arena.alloc(64);
  const c = arena.alloc(64);
  arena.release(a);
  arena.release(b);
  assert.equal(arena.alloc(128), a, "a and b coalesced into one 128-byte hole");
  const view = new Float32Array(mem.buffer, c, 16);
  view.fill(3);
  const big = arena.alloc(5 * 65536); // forces memory.grow
  assert.ok(mem.buffer.byteLength >= big + 5 * 65536);
  assert.equal(view[15], 3, "shared memory views do not detach on growth");
  assert.equal(arena.release(12345), false);
});

test("executor arrays start zeroed even when the arena reuses a freed block", {
  skip: wasmSkip,
}, async () => {
  const e = await wasmExecutor();
  const a = e.allocF32(100);
  a.fill(7);
  e.free(a);
  const b = e.allocF32(100);
  assert.equal(b.byteOffset, a.byteOffset, "the freed block is reused");
  assert.ok(b.every((x) => x === 0));
  e.dispose();
});

test("executor arrays start zeroed when a block straddles old data and fresh memory", {
  skip: wasmSkip,
}, async () => {
  const e = await wasmExecutor();
  const a = e.allocF32(100);
  a.fill(7);
  e.free(a); // at the top: the arena shrinks back, so the next block starts on a's old bytes
  const b = e.allocF32(300);
  assert.equal(b.byteOffset, a.byteOffset);
  assert.ok(b.every((x) => x === 0));
  b.fill(5);
  const c = e.allocF32(50); // fresh memory above b
  assert.ok(c.every((x) => x === 0));
  e.free(b);
  const d = e.allocF32(60); // reuses b's hole
  assert.equal(d.byteOffset, b.byteOffset);
  assert.ok(d.every((x) => x === 0));
  e.dispose();
});

test("executor arrays of length 0 hold a block until freed, and free() releases it", {
  skip: wasmSkip,
}, async () => {
  const e = await wasmExecutor();
  const before = e.bytesInUse();
  const empty = [e.allocF32(0), e.allocU8(0), e.allocU16(0), e.allocI32(0)];
  assert.equal(e.bytesInUse() - before, 4 * 16, "each takes the arena's smallest block (16 bytes)");
  assert.equal(new Set(empty.map((a) => a.byteOffset)).size, 4, "distinct blocks");
  for (const a of empty) e.free(a);
  assert.equal(e.bytesInUse(), before, "freeing empty arrays released their blocks");
  e.dispose();
});
