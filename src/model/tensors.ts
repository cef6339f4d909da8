/**
 * Tensors as they lie in model files, and their conversion to what executor memory holds.
 * Every loader lists its tensors as `TensorEntry`s (file, absolute byte offset, dtype, shape);
 * weights are then read straight from the file into executor-allocated arrays, so a file is
 * never held whole in memory and no tensor is buffered outside the executor. Vectors (norms,
 * biases) and, with `weights: "f32"`, matrices become Float32Arrays (F32: bytes copied in place;
 * F16/BF16: read into the array's own upper half and widened in place). With `weights: "keep"`
 * (the default) an F16/BF16 matrix stays 16-bit, and a GGUF Q8_0 one stays in its blocks
 * (src/kernels/weights.ts: the matmul widens them exactly in registers, so results are those of
 * widening on load, at half (Q8_0: 0.27x) the memory of f32).
 */
import { ModelFormatError } from "../errors.ts";
import type { Executor } from "../kernels/executor.ts";
import {
  asMatrix,
  F16Array,
  f16Lut,
  type Matrix,
  type MatrixType,
  Q8_0_BLOCK,
  Q8_0_BLOCK_BYTES,
  Q8_0Array,
  storedLength,
  widenInto,
} from "../kernels/weights.ts";
import { closeSync, fstatSync, openSync, readSync } from "../platform/host.ts";

/**
 * How weight matrices are held: "keep" = in the file's type where it is F16, BF16 or Q8_0 (F32
 * stays f32), "f32" = every matrix widened to f32 on load (the behaviour before 16-bit matmuls).
 */
export type WeightsMode = "keep" | "f32";
export const WEIGHTS_MODES: readonly WeightsMode[] = ["keep", "f32"];

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
    if (t.dtype === "Q8_0") {
      // dequantized on load (weights "f32", or a vector): the blocks, then d * q per weight
      const q = new Q8_0Array(storedLength("q8_0", n));
      this.readQ8_0(t, q);
      widenInto(q, 0, dst);
      return;
    }
    if (t.dtype !== "F16" && t.dtype !== "BF16")
      throw new ModelFormatError(
        t.file,
        `tensor "${t.name}" has dtype ${t.dtype}; kvlab reads F32, F16, BF16 and (GGUF) Q8_0 weights (convert the model)`,
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

  /**
   * Read F16/BF16 tensor `t` as its 16-bit patterns into `dst` (numel(t.shape) elements), checking
   * that every element is finite (the 16-bit matmul assumes it, as the f32 path checks it).
   */
  readHalf(t: TensorEntry, dst: Uint16Array): void {
    const n = numel(t.shape);
    if (dst.length !== n) throw new Error(`internal: readHalf dst ${dst.length} != ${n}`);
    if (t.dtype !== "F16" && t.dtype !== "BF16")
      throw new Error(`internal: readHalf of tensor "${t.name}" with dtype ${t.dtype}`);
    this.readInto(t.file, t.offset, new Uint8Array(dst.buffer, dst.byteOffset, 2 * n), `tensor "${t.name}"`);
    // exponent all ones: Inf or NaN
    const expMask = t.dtype === "F16" ? 0x7c00 : 0x7f80;
    for (let i = 0; i < n; i++) {
      const h = dst[i]!;
      if ((h & expMask) === expMask)
        throw new ModelFormatError(
          t.file,
          `tensor "${t.name}" element ${i} is ${(h & 0x7fff) === expMask ? (h & 0x8000 ? "-Infinity" : "Infinity") : "NaN"}: weights must be finite`,
          t.offset + i * 2,
        );
    }
  }

  /**
   * Read Q8_0 tensor `t` (GGUF: 34-byte blocks of an f16 scale and 32 int8) as stored into `dst`,
   * checking that every scale is finite.
   */
  readQ8_0(t: TensorEntry, dst: Uint8Array): void {
    const n = numel(t.shape);
    if (n % Q8_0_BLOCK !== 0 || dst.length !== storedLength("q8_0", n))
      throw new Error(`internal: readQ8_0 of tensor "${t.name}" into ${dst.length} bytes`);
    this.readInto(t.file, t.offset, dst, `tensor "${t.name}"`);
    for (let b = 0; b < dst.length; b += Q8_0_BLOCK_BYTES)
      if ((dst[b + 1]! & 0x7c) === 0x7c)
        throw new ModelFormatError(
          t.file,
          `tensor "${t.name}" block ${b / Q8_0_BLOCK_BYTES} has a non-finite scale: weights must be finite`,
          t.offset + b,
        );
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
    /** How matrices are held (loadMatrix): in the file's 16-bit type, or widened to f32. */
    readonly weights: WeightsMode = "keep",
  ) {}

  /**
   * The type matrix `name` is held in: its own for F16/BF16 when weights are kept, else f32.
   * Unsupported dtypes are refused naming the tensor and its dtype.
   */
  matrixType(name: string): MatrixType {
    const t = this.entries.get(name);
    if (!t) return "f32"; // entry() reports it
    if (t.dtype !== "F32" && t.dtype !== "F16" && t.dtype !== "BF16" && t.dtype !== "Q8_0")
      throw new ModelFormatError(
        t.file,
        `tensor "${t.name}" has dtype ${t.dtype}; kvlab reads F32, F16, BF16 and (GGUF) Q8_0 weights (convert the model)`,
        t.headerOffset,
      );
    if (this.weights === "f32" || t.dtype === "F32") return "f32";
    return t.dtype === "F16" ? "f16" : t.dtype === "BF16" ? "bf16" : "q8_0";
  }

  /**
   * One type for matrices loaded into one allocation (fused q/k/v, gate/up): their common 16-bit
   * type, or f32 when they differ.
   */
  groupType(names: string[]): MatrixType {
    const types = names.map((n) => this.matrixType(n));
    return types.every((t) => t === types[0]) ? types[0]! : "f32";
  }

  /** An executor allocation for a matrix of `n` elements of `type`. */
  allocMatrix(exec: Executor, type: MatrixType, n: number): Matrix {
    if (type === "q8_0") {
      const b = exec.allocU8(storedLength(type, n));
      return new Q8_0Array(b.buffer as ArrayBuffer, b.byteOffset, b.length);
    }
    return type === "f32" ? exec.allocF32(n) : asMatrix(type, exec.allocU16(n));
  }

  /** Load matrix `name` (shape checked) into executor memory, in matrixType(name). */
  loadMatrix(exec: Executor, name: string, shape: number[]): Matrix {
    this.entry(name, shape);
    return this.loadMatrixInto(this.allocMatrix(exec, this.matrixType(name), numel(shape)), name, shape);
  }

  /** Load matrix `name` into `dst` (numel(shape) elements of an f32 or 16-bit matrix, e.g. part of a fused allocation). */
  loadMatrixInto(dst: Matrix, name: string, shape: number[]): Matrix {
    if (dst instanceof Float32Array) return this.loadInto(dst, name, shape);
    const t = this.entry(name, shape);
    const want = dst instanceof F16Array ? "F16" : dst instanceof Q8_0Array ? "Q8_0" : "BF16";
    if (t.dtype !== want) throw new Error(`internal: tensor "${name}" is ${t.dtype}, loaded into ${want}`);
    if (dst instanceof Q8_0Array) this.files.readQ8_0(t, dst);
    else this.files.readHalf(t, dst);
    return dst;
  }

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
