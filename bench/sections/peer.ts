import type { BenchContext } from "../lib/context.ts";
import { newSection, type SectionResult, skip } from "../lib/report.ts";

export async function runPeer(_ctx: BenchContext): Promise<SectionResult> {
  const s = newSection("peer");
  skip(s, "not written yet");
  return s;
}
