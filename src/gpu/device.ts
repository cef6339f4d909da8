/**
 * The process-wide WebGPU device, over Dawn (the `webgpu` npm package).
 *
 * One device per process, created lazily on first use and destroyed at exit (a live Dawn
 * device keeps node's event loop alive). Backend selection: an explicit `backend` option (or
 * $KVLAB_GPU_BACKEND) wins; otherwise Vulkan at the core feature level is tried first (real
 * GPUs), then OpenGL at the compatibility feature level, which is how Dawn runs on Mesa's
 * llvmpipe on CPU-only machines (EGL_PLATFORM=surfaceless, no display needed).
 */
import { DeviceUnavailableError } from "../errors.ts";
import { type DawnModule, env, HOST, importDawn, onExit } from "../platform/host.ts";

export type GpuBackend = "vulkan" | "opengl" | "opengles";
export const GPU_BACKENDS: readonly GpuBackend[] = ["vulkan", "opengl", "opengles"];

export interface GpuOptions {
  /** Dawn backend; default: $KVLAB_GPU_BACKEND, else vulkan then opengl. */
  backend?: GpuBackend;
  /** Dawn adapter name (as Dawn lists it), default: $KVLAB_GPU_ADAPTER or the first one. */
  adapter?: string;
}

/** What `kvlab info` reports about the adapter in use. */
export interface GpuAdapterReport {
  backend: GpuBackend;
  featureLevel: "core" | "compatibility";
  vendor: string;
  device: string;
  description: string;
  /** The limits the kernels depend on. */
  limits: {
    maxStorageBuffersPerShaderStage: number;
    maxStorageBufferBindingSize: number;
    maxBufferSize: number;
    maxComputeWorkgroupStorageSize: number;
    maxComputeInvocationsPerWorkgroup: number;
    maxComputeWorkgroupsPerDimension: number;
  };
  /** shader-f16 is optional in compatibility mode; the kernels never need it (f16 stays packed in u32). */
  shaderF16: boolean;
}

export interface GpuContext {
  device: GPUDevice;
  report: GpuAdapterReport;
  /**
   * Dawn's instance and adapter. Held only to keep them alive: if the instance is garbage
   * collected while its device lives, Dawn's GL backend aborts the process at the next call.
   */
  keepAlive: [GPU, GPUAdapter];
}

/** Storage buffers a kernel may bind: the compatibility-mode minimum, which every kernel here fits. */
export const KERNEL_STORAGE_BUFFERS = 4;

let pending: Promise<GpuContext> | undefined;
let live: GpuContext | undefined;
let exitHooked = false;
/** Every Dawn instance created here (one per backend tried), kept from the garbage collector. */
const instances: GPU[] = [];

function optionsFromEnv(options: GpuOptions): GpuOptions {
  const backend = env("KVLAB_GPU_BACKEND");
  const out: GpuOptions = { ...options };
  if (!out.backend && backend) {
    if (!(GPU_BACKENDS as readonly string[]).includes(backend))
      throw new DeviceUnavailableError(
        `KVLAB_GPU_BACKEND="${backend}" is not a backend; use one of ${GPU_BACKENDS.join(", ")}`,
      );
    out.backend = backend as GpuBackend;
  }
  const adapter = env("KVLAB_GPU_ADAPTER");
  if (!out.adapter && adapter) out.adapter = adapter;
  return out;
}

async function loadDawn(): Promise<DawnModule> {
  try {
    const mod = await importDawn();
    // GPUBufferUsage, GPUMapMode, ... are globals in browsers; Dawn exports them.
    Object.assign(globalThis, mod.globals);
    return mod;
  } catch (err) {
    throw new DeviceUnavailableError(
      `cannot load Dawn (npm package "webgpu"): ${(err as Error).message}; the \`webgpu\` executor needs it: \`npm install webgpu\` (an optional peer dependency of kvlab; in a checkout of kvlab, \`npm ci\`)`,
    );
  }
}

async function tryAdapter(
  dawn: DawnModule,
  backend: GpuBackend,
  adapterName: string | undefined,
): Promise<{ gpu: GPU; adapter: GPUAdapter; featureLevel: "core" | "compatibility" } | string> {
  let gpu: GPU;
  try {
    gpu = dawn.create([`backend=${backend}`, ...(adapterName ? [`adapter=${adapterName}`] : [])]);
  } catch (err) {
    return `${backend}: ${(err as Error).message.split("\n")[0]}`;
  }
  instances.push(gpu);
  // Vulkan on a real GPU gives a core adapter; GL backends (llvmpipe) only offer compatibility.
  const levels: ("core" | "compatibility")[] =
    backend === "vulkan" ? ["core", "compatibility"] : ["compatibility"];
  for (const featureLevel of levels) {
    const adapter = await gpu.requestAdapter({ featureLevel } as GPURequestAdapterOptions);
    if (adapter) return { gpu, adapter, featureLevel };
  }
  return `${backend}: no adapter${adapterName ? ` named "${adapterName}"` : ""}`;
}

function describe(
  adapter: GPUAdapter,
  device: GPUDevice,
  backend: GpuBackend,
  featureLevel: "core" | "compatibility",
): GpuAdapterReport {
  const info = adapter.info;
  const l = device.limits;
  return {
    backend,
    featureLevel,
    vendor: info.vendor,
    device: info.device || info.description,
    description: info.description,
    limits: {
      maxStorageBuffersPerShaderStage: l.maxStorageBuffersPerShaderStage,
      maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
      maxBufferSize: l.maxBufferSize,
      maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
      maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
      maxComputeWorkgroupsPerDimension: l.maxComputeWorkgroupsPerDimension,
    },
    shaderF16: adapter.features.has("shader-f16"),
  };
}

/** In a browser: the page's navigator.gpu (no backend choice; the browser picks). */
async function createBrowserContext(): Promise<GpuContext> {
  const gpu = (globalThis as { navigator?: { gpu?: GPU } }).navigator?.gpu;
  if (!gpu)
    throw new DeviceUnavailableError(
      "this browser has no WebGPU (navigator.gpu); use a browser with WebGPU enabled, or the wasm executor",
    );
  let featureLevel: "core" | "compatibility" = "core";
  let adapter = await gpu.requestAdapter();
  if (!adapter) {
    featureLevel = "compatibility";
    adapter = await gpu.requestAdapter({ featureLevel } as GPURequestAdapterOptions);
  }
  if (!adapter) throw new DeviceUnavailableError("navigator.gpu gave no adapter; use the wasm executor");
  const a = adapter.limits;
  const device = await adapter.requestDevice({
    requiredLimits: {
      maxStorageBufferBindingSize: a.maxStorageBufferBindingSize,
      maxBufferSize: a.maxBufferSize,
      maxComputeWorkgroupStorageSize: a.maxComputeWorkgroupStorageSize,
      maxComputeInvocationsPerWorkgroup: a.maxComputeInvocationsPerWorkgroup,
    },
  });
  const ctx: GpuContext = {
    device,
    // The backend is the browser's own (Vulkan, D3D12, Metal, SwiftShader); "vulkan" is a label.
    report: describe(adapter, device, "vulkan", featureLevel),
    keepAlive: [gpu, adapter],
  };
  live = ctx;
  return ctx;
}

async function createContext(options: GpuOptions): Promise<GpuContext> {
  if (HOST === "browser") return createBrowserContext();
  const opts = optionsFromEnv(options);
  const dawn = await loadDawn();
  const backends: GpuBackend[] = opts.backend ? [opts.backend] : ["vulkan", "opengl"];
  const why: string[] = [];
  for (const backend of backends) {
    const got = await tryAdapter(dawn, backend, opts.adapter);
    if (typeof got === "string") {
      why.push(got);
      continue;
    }
    const { gpu, adapter, featureLevel } = got;
    const a = adapter.limits;
    // Ask for the adapter's own limits where the kernels benefit (big caches, wide workgroups).
    const device = await adapter.requestDevice({
      requiredLimits: {
        maxStorageBufferBindingSize: a.maxStorageBufferBindingSize,
        maxBufferSize: a.maxBufferSize,
        maxComputeWorkgroupStorageSize: a.maxComputeWorkgroupStorageSize,
        maxComputeInvocationsPerWorkgroup: a.maxComputeInvocationsPerWorkgroup,
      },
    });
    device.lost.then((lost) => {
      if (lost.reason !== "destroyed") console.error(`kvlab: WebGPU device lost: ${lost.message}`);
    });
    const ctx: GpuContext = {
      device,
      report: describe(adapter, device, backend, featureLevel),
      keepAlive: [gpu, adapter],
    };
    live = ctx;
    if (!exitHooked) {
      exitHooked = true;
      // Without this a held device keeps node alive after main() returns.
      onExit(() => destroyGpu());
    }
    return ctx;
  }
  throw new DeviceUnavailableError(
    `no WebGPU adapter (${why.join("; ")}). On a CPU-only Debian machine install Mesa's llvmpipe: ` +
      "`apt-get install libegl1 libegl-mesa0 libgl1-mesa-dri` and use backend=opengl; " +
      "on a GPU machine install the Vulkan loader (libvulkan1) and the vendor driver, or choose another executor",
  );
}

/** The process-wide device, created on first call. Rejects with DeviceUnavailableError when none. */
export function getGpu(options: GpuOptions = {}): Promise<GpuContext> {
  if (!pending) {
    pending = createContext(options);
    // A failed attempt is not cached, so a later call (other options, packages installed) retries.
    pending.catch(() => {
      pending = undefined;
    });
  }
  return pending;
}

/** Whether a device can be had here, and the adapter or the reason why not. Creates the device. */
export async function probeGpu(
  options: GpuOptions = {},
): Promise<{ available: boolean; detail: string; adapter?: GpuAdapterReport }> {
  try {
    const { report } = await getGpu(options);
    return {
      available: true,
      detail: `${report.device} via ${report.backend} (${report.featureLevel})`,
      adapter: report,
    };
  } catch (err) {
    return { available: false, detail: (err as Error).message };
  }
}

/** Destroy the device (idempotent). Later getGpu() calls create a fresh one. */
export function destroyGpu(): void {
  if (live) {
    live.device.destroy();
    live = undefined;
  }
  pending = undefined;
}
