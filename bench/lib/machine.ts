/**
 * A stable machine name for result files: node major + core count + CPU family, never the
 * hostname (which changes per container). Example: `node20-2core-amd-epyc`.
 */
import os from "node:os";

export interface MachineInfo {
  name: string;
  node: string;
  cpuModel: string;
  cores: number;
  totalMemGiB: number;
  platform: string;
  arch: string;
}

export function machineInfo(): MachineInfo {
  const cpus = os.cpus();
  const cpuModel = cpus[0]?.model.trim() ?? "unknown";
  const major = process.versions.node.split(".")[0];
  const family = cpuModel
    .toLowerCase()
    .replace(/\(r\)|\(tm\)|cpu|processor|@.*$|\d+-core/g, "")
    .trim()
    .split(/\s+/)
    .slice(0, 3)
    .join("-")
    .replace(/[^a-z0-9-]/g, "");
  return {
    name: `node${major}-${cpus.length}core${family ? `-${family}` : ""}`,
    node: process.version,
    cpuModel,
    cores: cpus.length,
    totalMemGiB: Math.round(os.totalmem() / 2 ** 30),
    platform: os.platform(),
    arch: os.arch(),
  };
}
