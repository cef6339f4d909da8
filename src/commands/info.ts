/** `kvlab info`: what this install offers (codecs, policies, presets, executors) and whether each runs here. */
import type { Command } from "commander";
import { POLICIES, sharedPolicyOptions } from "../cache/policies/registry.ts";
import { PRESETS } from "../cache/presets.ts";
import { STORAGE_OPTIONS } from "../cache/spec.ts";
import { EXECUTORS } from "../kernels/registry.ts";
import { MODEL_FAMILIES } from "../model/config.ts";
import { CODECS } from "../quant/registry.ts";
import { TASKS } from "../tasks/registry.ts";

export async function collectInfo() {
  const executors = [];
  for (const e of Object.values(EXECUTORS)) {
    const probe = await e.probe();
    executors.push({ name: e.name, description: e.description, ...probe });
  }
  return {
    version: (await import("../../package.json", { with: { type: "json" } })).default.version,
    node: process.version,
    codecs: Object.values(CODECS).map((c) => ({
      name: c.name,
      description: c.description,
      paper: c.paper ?? null,
    })),
    policies: Object.values(POLICIES).map((p) => ({
      name: p.name,
      description: p.description,
      paper: p.paper ?? null,
    })),
    policyOptions: sharedPolicyOptions(),
    storage: Object.entries(STORAGE_OPTIONS).map(([name, o]) => ({
      name,
      description: `${o.values}: ${o.description}`,
      paper: o.paper ?? null,
    })),
    presets: Object.entries(PRESETS).map(([name, p]) => ({
      name,
      description: p.description,
      paper: p.paper ?? null,
    })),
    models: Object.entries(MODEL_FAMILIES).map(([name, description]) => ({ name, description })),
    tasks: Object.entries(TASKS).map(([name, t]) => ({ name, description: t.description, paper: t.paper })),
    executors,
  };
}

export function register(program: Command): void {
  program
    .command("info")
    .description(
      "list codecs, policies, presets, model families, tasks and executors, and whether each is available here",
    )
    .option("--json", "print one JSON object")
    .action(async (opts: { json?: boolean }) => {
      const info = await collectInfo();
      if (opts.json) {
        console.log(JSON.stringify(info, null, 2));
        return;
      }
      console.log(`kvlab ${info.version} on node ${info.node}\n`);
      const section = (
        title: string,
        rows: { name: string; description: string; paper?: string | null }[],
      ) => {
        console.log(title);
        const w = Math.max(...rows.map((r) => r.name.length));
        for (const r of rows)
          console.log(`  ${r.name.padEnd(w)}  ${r.description}${r.paper ? `  [${r.paper}]` : ""}`);
        console.log();
      };
      section("codecs", info.codecs);
      section("policies", info.policies);
      section("policy options (every evicting policy)", info.policyOptions);
      section("storage options (each side: codec.keys / codec.values)", info.storage);
      section("presets", info.presets);
      section("model families (HF directories, GGUF for llama/qwen2/qwen3, llama2.c)", info.models);
      section("tasks (kvlab task, protocol type: task)", info.tasks);
      console.log("executors");
      for (const e of info.executors)
        console.log(
          `  ${e.name.padEnd(7)}  ${e.available ? "available  " : "unavailable"}  ${e.description} (${e.detail})`,
        );
      const gpu = info.executors.find((e) => "adapter" in e && e.adapter) as
        | { adapter: import("../gpu/device.ts").GpuAdapterReport }
        | undefined;
      if (gpu) {
        const a = gpu.adapter;
        console.log(
          `\nwebgpu adapter: ${a.device} (${a.description}), backend ${a.backend}, ${a.featureLevel} feature level`,
        );
        for (const [k, v] of Object.entries(a.limits)) console.log(`  ${k.padEnd(34)} ${v}`);
        console.log(
          `  ${"shader-f16".padEnd(34)} ${a.shaderF16 ? "yes" : "no (kernels keep f16 packed in u32)"}`,
        );
      }
    });
}
