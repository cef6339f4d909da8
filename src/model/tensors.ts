/**
 * Tensors as they lie in model files, and their one conversion to f32 in executor memory.
 * Every loader lists its tensors as `TensorEntry`s (file, absolute byte offset, dtype, shape);
 * weights are then read straight from the file into an executor-allocated Float32Array (F32:
 * bytes copied in place; F16/BF16: read into the array's own upper half and widened in place),
 * so a file is never held whole in memory and no tensor is buffered outside the executor.
 */
import { ModelFormatError } from "../errors.ts";
import type { Executor } from "../kernels/executor.ts";
import { closeSync, fstatSync, openSync, readSync } from "../platform/host.ts";
import { f16ToF32 } from "../quant/half.ts";

export type TensorDtype = "F32" | "F16" | "BF16";
export const DTYPE_BYTES: Record<TensorDtype, number> = { F32: 4, F16: 2, BF16: 2 };

export interface TensorEntry {
  name: string;
  /** A dtype kvlab converts, or the file's own name for one it does not (reported on use). */
  dtype: TensorDtype | string;
  /** Row-major (PyTorch order): a Linear weight is (dOut, dIn). */
  shape: number[];
  file: string;
  /** Absolute byte offset of the first element in `file`. */
  offset: number;
  /** Where the tensor's description lives (header byte), for error messages. */
  headerOffset: number;
}

export function numel(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

let f16Table: Float32Array | undefined;
function f16Lut(): Float32Array {
  if (!f16Table) {
    f16Table = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) f16Table[h] = f16ToF32(h);
  }
  return f16Table;
}

/**
 * Weights must be finite: one NaN or Inf would turn every logit it reaches into NaN (or, through
 * a norm, into silently zeroed attention). The error names the tensor, the element and its byte.
 */
function checkFinite(t: TensorEntry, x: Float32Array, elBytes: number): void {
  for (let i = 0; i < x.length; i++) {
    const v = x[i]!;
    if (v - v !== 0)
      throw new ModelFormatError(
        t.file,
        `tensor "${t.name}" element ${i} is ${v}: weights must be finite`,
        t.offset + i * elBytes,
      );
  }
}

/** Open files by path, once each; read byte ranges with clear truncation errors. */
export class FileSet {
  private readonly fds = new Map<string, { fd: number; size: number }>();

  open(file: string): { fd: number; size: number } {
    let f = this.fds.get(file);
    if (!f) {
      let fd: number;
      try {
        fd = openSync(file, "r");
      } catch (err) {
        throw new ModelFormatError(file, `cannot open: ${(err as Error).message}`);
      }
      const st = fstatSync(fd);
      if (!st.isFile()) {
        closeSync(fd);
        throw new ModelFormatError(
          file,
          `not a regular file (${st.isDirectory() ? "a directory" : "a device, pipe or socket"}); give a model file`,
        );
      }
      f = { fd, size: st.size };
      this.fds.set(file, f);
    }
    return f;
  }

  size(file: string): number {
    return this.open(file).size;
  }

  /** Read exactly dst.length bytes at `offset`, or throw naming where the file ends. */
  readInto(file: string, offset: number, dst: Uint8Array, what: string): void {
    const { fd, size } = this.open(file);
    if (offset + dst.length > size)
      throw new ModelFormatError(
        file,
        `${what} needs bytes [${offset}, ${offset + dst.length}) but the file ends at byte ${size}: it is truncated; re-download or re-export it`,
        size,
      );
    let done = 0;
    while (done < dst.length) {
      const n = readSync(fd, dst, done, dst.length - done, offset + done);
      if (n <= 0) throw new ModelFormatError(file, `${what}: unexpected end of file`, offset + done);
      done += n;
    }
  }

  read(file: string, offset: number, n: number, what: string): Uint8Array {
    const out = new Uint8Array(n);
    this.readInto(file, offset, out, what);
    return out;
  }

  /**
   * Read tensor `t` converted to f32 into `dst` (numel(t.shape) floats). F32 bytes go straight
   * into dst's memory (little-endian hosts, as every WASM/x86/ARM target is). F16/BF16 bytes are
   * read into the upper half of dst's own bytes and widened in place, front to back, so a load
   * needs no second buffer of the largest tensor: f32 i (bytes [4i, 4i+4)) is written after
   * half i (bytes [2n+2i, 2n+2i+2)) is read, and it overlaps no half j > i still to be read
   * (that would need 2n + 2j < 4i + 4 with j > i, i.e. i > n - 2, where no j is left).
   */
  readF32(t: TensorEntry, dst: Float32Array): void {
    const n = numel(t.shape);
    if (dst.length !== n) throw new Error(`internal: readF32 dst ${dst.length} != ${n}`);
    const what = `tensor "${t.name}"`;
    if (t.dtype === "F32") {
      this.readInto(t.file, t.offset, new Uint8Array(dst.buffer, dst.byteOffset, n * 4), what);
      checkFinite(t, dst, 4);
      return;
    }
    if (t.dtype !== "F16" && t.dtype !== "BF16")
      throw new ModelFormatError(
        t.file,
        `tensor "${t.name}" has dtype ${t.dtype}; kvlab reads F32, F16 and BF16 weights (convert the model)`,
        t.headerOffset,
      );
    // byteOffset + 2n is even, so the halves are 2-byte aligned (dst itself is 4-byte aligned).
    this.readInto(t.file, t.offset, new Uint8Array(dst.buffer, dst.byteOffset + 2 * n, 2 * n), what);
    const h = new Uint16Array(dst.buffer, dst.byteOffset + 2 * n, n);
    if (t.dtype === "F16") {
      const lut = f16Lut();
      for (let i = 0; i < n; i++) dst[i] = lut[h[i]!]!;
    } else {
      const d32 = new Uint32Array(dst.buffer, dst.byteOffset, n);
      for (let i = 0; i < n; i++) d32[i] = h[i]! << 16;
    }
    checkFinite(t, dst, 2);
  }

  close(): void {
    for (const { fd } of this.fds.values()) closeSync(fd);
    this.fds.clear();
  }
}

/** Tensors by name, from one or more files, plus the reader to load them. */
export class TensorSet {
  constructor(
    readonly entries: Map<string, TensorEntry>,
    readonly files: FileSet,
    /** Shown in "missing tensor" errors: the file or index that lists the tensors. */
    readonly where: string,
  ) {}

  has(name: string): boolean {
    return this.entries.has(name);
  }

  /** Load `name` as f32 into executor memory, checking its shape. */
  load(exec: Executor, name: string, shape: number[]): Float32Array {
    const t = this.entry(name, shape);
    const dst = exec.allocF32(numel(shape));
    this.files.readF32(t, dst);
    return dst;
  }

  /** The entry of `name`, checked against the shape the config implies. */
  entryOf(name: string, shape: number[]): TensorEntry {
    return this.entry(name, shape);
  }

  private entry(name: string, shape: number[]): TensorEntry {
    const t = this.entries.get(name);
    if (!t)
      throw new ModelFormatError(
        this.where,
        `missing tensor "${name}" (expected shape [${shape.join(", ")}]); the file does not match config/architecture`,
      );
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i]))
      throw new ModelFormatError(
        t.file,
        `tensor "${name}" has shape [${t.shape.join(", ")}] but the config implies [${shape.join(", ")}]`,
        t.headerOffset,
      );
    return t;
  }

  /** Load `name` as f32 into `dst` (numel(shape) floats, e.g. a part of a larger allocation). */
  loadInto(dst: Float32Array, name: string, shape: number[]): Float32Array {
    const t = this.entry(name, shape);
    this.files.readF32(t, dst);
    return dst;
  }
}
