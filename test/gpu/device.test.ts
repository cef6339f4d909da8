/**
 * Device management: a clear DeviceUnavailableError for a bad backend choice, the adapter
 * report `kvlab info` prints, one device per process, and a fresh one after destroy.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { DeviceUnavailableError } from "../../src/errors.ts";
import { destroyGpu, getGpu, probeGpu } from "../../src/gpu/device.ts";

test("an unknown KVLAB_GPU_BACKEND is a DeviceUnavailableError naming the choices", async () => {
  process.env.KVLAB_GPU_BACKEND = "metal-on-linux";
  try {
    await assert.rejects(getGpu(), (err: unknown) => {
      assert.ok(err instanceof DeviceUnavailableError);
      assert.match((err as Error).message, /KVLAB_GPU_BACKEND="metal-on-linux".*vulkan, opengl, opengles/);
      return true;
    });
  } finally {
    delete process.env.KVLAB_GPU_BACKEND;
  }
});

test("probe: an adapter with its backend and limits, or the reason there is none", async () => {
  const probe = await probeGpu();
  if (!probe.available) {
    // No adapter here: the reason must say how to get one.
    assert.match(probe.detail, /apt-get install libegl1 libegl-mesa0 libgl1-mesa-dri|libvulkan/);
    return;
  }
  const a = probe.adapter!;
  assert.ok(["vulkan", "opengl", "opengles"].includes(a.backend));
  assert.ok(a.device.length > 0);
  assert.ok(a.limits.maxStorageBuffersPerShaderStage >= 4, "every kernel binds at most 4 storage buffers");
  const first = await getGpu();
  assert.equal(await getGpu(), first, "one device per process");
  destroyGpu();
  const second = await getGpu();
  assert.notEqual(second, first, "a fresh device after destroy");
  destroyGpu();
});
