/**
 * Progress for long sweeps: a cli-progress bar (runs done/total, current run, tokens/s, ETA)
 * when stdout is a TTY, else one plain line per finished run (logs, CI=true, pipes).
 * The ETA is token-based: remaining runs x scored tokens, at the sweep's mean tokens/s so far.
 */
import cliProgress from "cli-progress";
import type { RunRecord } from "./types.ts";

export interface Progress {
  start(total: number, skipped: number, tokensPerRun: number): void;
  runStart(index: number, name: string): void;
  tokens(done: number, total: number): void;
  runEnd(record: RunRecord): void;
  note(message: string): void;
  stop(): void;
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return "?";
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

function summary(r: RunRecord): string {
  if (r.status === "error") return `${r.name}: ERROR ${r.error}`;
  const m = r.metrics!;
  if (m.task) {
    const [lo, hi] = m.task.interval;
    return `${r.name}: ${m.task.task} accuracy ${(100 * m.task.accuracy).toFixed(1)}% (${m.task.correct}/${m.task.total}, 95% CI ${(100 * lo).toFixed(0)}-${(100 * hi).toFixed(0)}%) ${(m.peakKvBytes / 1024).toFixed(1)} KiB ${r.wallSeconds.toFixed(1)}s`;
  }
  const kl =
    m.klMean !== undefined ? ` kld ${m.klMean.toExponential(2)} top1 ${(100 * m.sameTop1!).toFixed(1)}%` : "";
  return `${r.name}: ppl ${m.ppl.toFixed(3)}${kl} ${(m.peakKvBytes / 1024).toFixed(1)} KiB ${m.tokensPerSecond.toFixed(0)} tok/s ${r.wallSeconds.toFixed(1)}s`;
}

/** Shared ETA bookkeeping. */
class Clock {
  total = 0;
  done = 0;
  tokensPerRun = 0;
  private tokensDone = 0;
  private busySeconds = 0;
  private runStarted = 0;
  current = 0;

  startRun(): void {
    this.runStarted = performance.now();
    this.current = 0;
  }
  endRun(): void {
    this.busySeconds += (performance.now() - this.runStarted) / 1000;
    this.tokensDone += this.tokensPerRun;
    this.current = 0;
    this.done++;
  }
  rate(): number {
    const secs = this.busySeconds + (performance.now() - this.runStarted) / 1000;
    const toks = this.tokensDone + this.current;
    return secs > 0 ? toks / secs : 0;
  }
  eta(): number {
    const remaining = Math.max(0, (this.total - this.done) * this.tokensPerRun - this.current);
    const r = this.rate();
    return r > 0 ? remaining / r : Number.POSITIVE_INFINITY;
  }
}

export function plainProgress(log: (line: string) => void = (l) => console.log(l)): Progress {
  const c = new Clock();
  return {
    start(total, skipped, tokensPerRun) {
      c.total = total;
      c.tokensPerRun = tokensPerRun;
      log(`${total} run(s) to do${skipped ? `, ${skipped} already complete (use --force to rerun)` : ""}`);
    },
    runStart() {
      c.startRun();
    },
    tokens(done) {
      c.current = done;
    },
    runEnd(r) {
      c.endRun();
      log(`[${c.done}/${c.total}] ${summary(r)} (ETA ${formatDuration(c.eta())})`);
    },
    note: log,
    stop() {},
  };
}

export function barProgress(): Progress {
  const c = new Clock();
  // MultiBar (with one bar) because only it can print log lines above the bar.
  const multi = new cliProgress.MultiBar(
    {
      format: "{bar} {value}/{total} runs | {name} | {tps} scored tok/s | ETA {etaText}",
      hideCursor: true,
      clearOnComplete: false,
    },
    cliProgress.Presets.shades_classic,
  );
  let bar: cliProgress.SingleBar | undefined;
  let name = "";
  const payload = () => ({ name, tps: c.rate().toFixed(0), etaText: formatDuration(c.eta()) });
  return {
    start(total, skipped, tokensPerRun) {
      c.total = total;
      c.tokensPerRun = tokensPerRun;
      if (skipped) console.log(`${skipped} run(s) already complete (use --force to rerun)`);
      bar = multi.create(total, 0, payload());
    },
    runStart(_i, n) {
      name = n;
      c.startRun();
      bar?.update(payload());
    },
    tokens(done) {
      c.current = done;
      bar?.update(payload());
    },
    runEnd(r) {
      c.endRun();
      bar?.increment(1, payload());
      multi.log(`${summary(r)}\n`);
    },
    note(m) {
      multi.log(`${m}\n`);
    },
    stop() {
      multi.stop();
    },
  };
}

/** The bar on an interactive terminal, plain lines elsewhere (pipes, files, CI=true). */
export function defaultProgress(): Progress {
  const ci = process.env.CI !== undefined && process.env.CI !== "" && process.env.CI !== "false";
  return process.stdout.isTTY && !ci ? barProgress() : plainProgress();
}
