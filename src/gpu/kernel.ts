/**
 * A kernel is data (gpu.cpp style): WGSL source, the kinds of its bindings, and its workgroup
 * size. `GpuRuntime` turns kernels into pipelines once (cached by source text), owns the
 * uniform-parameter ring, and records dispatches, buffer uploads and read-backs.
 *
 * Binding convention: binding 0 is always the kernel's uniform parameter block; bindings
 * 1.. are storage buffers in the order of `storage`. Every kernel binds at most
 * KERNEL_STORAGE_BUFFERS (4) storage buffers, the compatibility-mode minimum.
 */
import { ShapeError } from "../errors.ts";
import { type GpuContext, KERNEL_STORAGE_BUFFERS } from "./device.ts";

export interface Kernel {
  /** For error messages and the pipeline cache's statistics. */
  name: string;
  code: string;
  /** Access of each storage binding 1..n: "read" (read-only-storage) or "rw" (storage). */
  storage: ("read" | "rw")[];
  /** Threads per workgroup along x (the WGSL must declare the same). */
  workgroupSize: number;
}

/** One dispatch: the kernel, its parameter words, buffers for bindings 1..n, workgroup counts. */
export interface Dispatch {
  kernel: Kernel;
  /** Parameter block, 16-byte aligned by the caller's struct layout (u32/i32/f32 words). */
  params: ArrayBuffer;
  buffers: GPUBuffer[];
  groups: [number, number?, number?];
}

/** Bytes per parameter slot in the uniform ring (the WGSL param structs stay under this). */
const PARAM_SLOT = 512;
const PARAM_SLOTS = 512;

export class GpuRuntime {
  readonly device: GPUDevice;
  private readonly pipelines = new Map<
    string,
    { pipeline: GPUComputePipeline; layout: GPUBindGroupLayout }
  >();
  private readonly ring: GPUBuffer;
  private readonly slotBytes: number;
  private nextSlot = 0;
  /** Bytes copied host -> device and device -> host since creation (the bus traffic). */
  readonly traffic = { uploaded: 0, downloaded: 0, readbacks: 0, dispatches: 0, paramBytes: 0 };

  constructor(readonly ctx: GpuContext) {
    this.device = ctx.device;
    const align = this.device.limits.minUniformBufferOffsetAlignment;
    this.slotBytes = Math.ceil(PARAM_SLOT / align) * align;
    this.ring = this.device.createBuffer({
      label: "kvlab params ring",
      size: this.slotBytes * PARAM_SLOTS,
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
    });
  }

  private pipeline(k: Kernel) {
    let p = this.pipelines.get(k.code);
    if (!p) {
      if (k.storage.length > KERNEL_STORAGE_BUFFERS)
        throw new ShapeError(
          `kernel ${k.name} binds ${k.storage.length} storage buffers (max ${KERNEL_STORAGE_BUFFERS})`,
        );
      const layout = this.device.createBindGroupLayout({
        label: k.name,
        entries: [
          { binding: 0, visibility: GPUShaderStage.COMPUTE, buffer: { type: "uniform" } },
          ...k.storage.map((s, i) => ({
            binding: i + 1,
            visibility: GPUShaderStage.COMPUTE,
            buffer: { type: s === "read" ? ("read-only-storage" as const) : ("storage" as const) },
          })),
        ],
      });
      const module = this.device.createShaderModule({ label: k.name, code: k.code });
      const pipeline = this.device.createComputePipeline({
        label: k.name,
        layout: this.device.createPipelineLayout({ bindGroupLayouts: [layout] }),
        compute: { module, entryPoint: "main" },
      });
      p = { pipeline, layout };
      this.pipelines.set(k.code, p);
    }
    return p;
  }

  /** Pipelines compiled so far. */
  get pipelineCount(): number {
    return this.pipelines.size;
  }

  /**
   * Record and submit a batch of dispatches in order. Parameter blocks go through
   * queue.writeBuffer into ring slots: queue order makes slot reuse across batches safe, so a
   * batch may hold at most PARAM_SLOTS dispatches.
   */
  run(batch: Dispatch[]): void {
    if (batch.length > PARAM_SLOTS)
      throw new ShapeError(`a GPU batch holds at most ${PARAM_SLOTS} dispatches`);
    const enc = this.device.createCommandEncoder();
    const maxGroups = this.device.limits.maxComputeWorkgroupsPerDimension;
    for (const d of batch) {
      if (d.params.byteLength > PARAM_SLOT)
        throw new ShapeError(`kernel ${d.kernel.name}: parameter block too big`);
      const [gx, gy = 1, gz = 1] = d.groups;
      if (gx === 0 || gy === 0 || gz === 0) continue;
      if (gx > maxGroups || gy > maxGroups || gz > maxGroups)
        throw new ShapeError(
          `kernel ${d.kernel.name}: ${gx}x${gy}x${gz} workgroups exceed this device's ${maxGroups} per dimension; use smaller chunks`,
        );
      const slot = this.nextSlot;
      this.nextSlot = (this.nextSlot + 1) % PARAM_SLOTS;
      this.device.queue.writeBuffer(this.ring, slot * this.slotBytes, d.params);
      this.traffic.paramBytes += d.params.byteLength;
      const { pipeline, layout } = this.pipeline(d.kernel);
      const group = this.device.createBindGroup({
        layout,
        entries: [
          { binding: 0, resource: { buffer: this.ring, offset: slot * this.slotBytes, size: PARAM_SLOT } },
          ...d.buffers.map((buffer, i) => ({ binding: i + 1, resource: { buffer } })),
        ],
      });
      const pass = enc.beginComputePass();
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, group);
      pass.dispatchWorkgroups(gx, gy, gz);
      pass.end();
      this.traffic.dispatches++;
      // One pass per dispatch: WebGPU orders storage writes between passes, so each kernel
      // sees the previous one's results. Slots are reused per batch; keep batches small.
      if (slot === PARAM_SLOTS - 1) {
        this.device.queue.submit([enc.finish()]);
        this.run(batch.slice(batch.indexOf(d) + 1));
        return;
      }
    }
    this.device.queue.submit([enc.finish()]);
  }

  /** A storage buffer of at least `bytes` bytes (rounded up to 4; at least 16). */
  buffer(bytes: number, label: string, extraUsage = 0): GPUBuffer {
    return this.device.createBuffer({
      label,
      size: Math.max(16, Math.ceil(bytes / 4) * 4),
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST | extraUsage,
    });
  }

  /** Copy host data into buf at byteOffset (counted as bus traffic). */
  upload(buf: GPUBuffer, data: ArrayBufferView, byteOffset = 0): void {
    let view = data;
    if (data.byteLength % 4 !== 0) {
      // writeBuffer moves whole words; pad a copy.
      const padded = new Uint8Array(Math.ceil(data.byteLength / 4) * 4);
      padded.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
      view = padded;
    }
    this.device.queue.writeBuffer(buf, byteOffset, view.buffer, view.byteOffset, view.byteLength);
    this.traffic.uploaded += data.byteLength;
  }

  /** Read `bytes` bytes of each (buffer, offset) range back to the host, in one map. */
  async read(ranges: { buf: GPUBuffer; offset?: number; bytes: number }[]): Promise<ArrayBuffer[]> {
    const sizes = ranges.map((r) => Math.ceil(r.bytes / 4) * 4);
    const total = sizes.reduce((a, b) => a + b, 0);
    if (total === 0) return ranges.map(() => new ArrayBuffer(0));
    const staging = this.device.createBuffer({
      label: "kvlab readback",
      size: total,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    const enc = this.device.createCommandEncoder();
    let at = 0;
    ranges.forEach((r, i) => {
      if (sizes[i]! > 0) enc.copyBufferToBuffer(r.buf, r.offset ?? 0, staging, at, sizes[i]!);
      at += sizes[i]!;
    });
    this.device.queue.submit([enc.finish()]);
    await staging.mapAsync(GPUMapMode.READ);
    const all = staging.getMappedRange().slice(0);
    staging.unmap();
    staging.destroy();
    this.traffic.downloaded += total;
    this.traffic.readbacks++;
    at = 0;
    return ranges.map((r, i) => {
      const out = all.slice(at, at + r.bytes);
      at += sizes[i]!;
      return out;
    });
  }

  /** Copy bytes between buffers (queue-ordered with dispatches). */
  copy(src: GPUBuffer, srcOffset: number, dst: GPUBuffer, dstOffset: number, bytes: number): void {
    if (bytes === 0) return;
    const enc = this.device.createCommandEncoder();
    enc.copyBufferToBuffer(src, srcOffset, dst, dstOffset, bytes);
    this.device.queue.submit([enc.finish()]);
  }

  /** Resolves when everything submitted so far has run. */
  async sync(): Promise<void> {
    await this.device.queue.onSubmittedWorkDone();
  }

  dispose(): void {
    this.ring.destroy();
    this.pipelines.clear();
  }
}

/** Little helper to build parameter blocks: u32/i32/f32 words in declaration order. */
export class Params {
  private readonly words: number[] = [];
  private readonly kinds: ("u" | "i" | "f")[] = [];
  u(...xs: number[]): this {
    for (const x of xs) {
      this.words.push(x);
      this.kinds.push("u");
    }
    return this;
  }
  i(...xs: number[]): this {
    for (const x of xs) {
      this.words.push(x);
      this.kinds.push("i");
    }
    return this;
  }
  f(...xs: number[]): this {
    for (const x of xs) {
      this.words.push(x);
      this.kinds.push("f");
    }
    return this;
  }
  /** Pad to a multiple of 4 words (a vec4 boundary, as WGSL uniform arrays of vec4 need). */
  align4(): this {
    while (this.words.length % 4 !== 0) this.u(0);
    return this;
  }
  build(): ArrayBuffer {
    const n = Math.max(4, Math.ceil(this.words.length / 4) * 4);
    const buf = new ArrayBuffer(n * 4);
    const dv = new DataView(buf);
    this.words.forEach((w, k) => {
      const kind = this.kinds[k]!;
      if (kind === "f") dv.setFloat32(k * 4, w, true);
      else if (kind === "i") dv.setInt32(k * 4, w, true);
      else dv.setUint32(k * 4, w >>> 0, true);
    });
    return buf;
  }
}
