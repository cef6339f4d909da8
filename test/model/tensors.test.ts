/** FileSet.readF32: F32 / F16 / BF16 bytes at any (odd) file offset become the right f32 values. */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { ModelFormatError } from "../../src/errors.ts";
import { FileSet, type TensorEntry } from "../../src/model/tensors.ts";

test("F16, BF16 and F32 tensors read at odd offsets, truncation reported", () => {
  const dir = mkdtempSync(join(tmpdir(), "kvlab-tensors-"));
  try {
    const file = join(dir, "t.bin");
    // Hand-encoded values (not produced by kvlab's converters).
    const f16 = [0x3c00, 0xc000, 0x7bff, 0x0001, 0x8000]; // 1, -2, 65504, 2^-24, -0
    const bf16 = [0x3f80, 0xc040, 0x4049]; // 1, -3, 3.140625
    const f32 = [0.1, -7.25];
    const b = Buffer.alloc(1 + 10 + 6 + 8);
    let o = 1; // odd start: nothing may assume alignment in the file
    for (const h of f16) o = b.writeUInt16LE(h, o);
    for (const h of bf16) o = b.writeUInt16LE(h, o);
    for (const x of f32) o = b.writeFloatLE(x, o);
    writeFileSync(file, b);
    const fs = new FileSet();
    const entry = (dtype: string, offset: number, n: number): TensorEntry => ({
      name: dtype,
      dtype,
      shape: [n],
      file,
      offset,
      headerOffset: 0,
    });
    const read = (e: TensorEntry) => {
      const dst = new Float32Array(e.shape[0]!);
      fs.readF32(e, dst);
      return Array.from(dst);
    };
    assert.deepEqual(read(entry("F16", 1, 5)), [1, -2, 65504, 2 ** -24, -0]);
    assert.deepEqual(read(entry("BF16", 11, 3)), [1, -3, 3.140625]);
    assert.deepEqual(read(entry("F32", 17, 2)), [Math.fround(0.1), -7.25]);
    assert.throws(
      () => read(entry("F32", 17, 3)),
      (e: unknown) => e instanceof ModelFormatError && e.offset === 25 && /truncated/.test(e.message),
    );
    assert.throws(() => read(entry("I64", 1, 1)), /dtype I64/);
    fs.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
