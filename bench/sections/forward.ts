import type { BenchContext } from "../lib/context.ts";
import { newSection, type SectionResult, skip } from "../lib/report.ts";

export async function runForward(_ctx: BenchContext): Promise<SectionResult> {
  const s = newSection("forward");
  skip(s, "not written yet");
  return s;
}
