/**
 * Seeded, deterministic long-context task samples for any model kvlab loads: passkey, needle,
 * kv-recall and variable tracking (vt). A sample is a prompt (BOS + context + question) of at
 * most `length` tokens of the model's own tokenizer, with the fact placed at `depth` (0 = start
 * of the filler, 1 = its end), and the expected answer.
 *
 * The whole prompt is tokenized at once (as a model sees it) and split into context and
 * question at the last token boundary inside the context text, so a token that straddles the
 * boundary (e.g. "\n\n") goes with the question. Each (length, depth, index) cell draws from
 * its own seed, so adding lengths or depths to a grid never changes the other cells' samples.
 */
import { ConfigError } from "../errors.ts";
import type { TextTokenizer } from "../model/tokenizer.ts";
import { mulberry32 } from "../rng.ts";
import { BUILTIN_NEEDLES, type Needle } from "./needles.ts";
import { FIRST_NAMES, KV_RECALL, LAST_NAMES, PASSKEY, VARIABLE_TRACKING } from "./templates.ts";

export const TASK_NAMES = ["passkey", "needle", "kv-recall", "vt"] as const;
export type TaskName = (typeof TASK_NAMES)[number];

/** How a generated answer is judged. */
export type MatchRule = "digits" | "contains" | "exact" | "all-words";

export interface TaskSpec {
  task: TaskName;
  /** Prompt lengths in tokens (BOS + context + question). */
  lengths: number[];
  /** Where the fact sits in the filler, each in [0, 1]. */
  depths: number[];
  /** Samples per (length, depth) cell. */
  samples: number;
  seed: number;
  /** Text the filler is cut from (needle: required; passkey: optional, else the classic repeated filler). */
  haystack?: string;
  /** Needle task: a user needle instead of the built-in set (cycled over samples). */
  needle?: Needle;
  /** How answers are judged (default: digits for passkey/kv-recall, contains for needle, all-words for vt). */
  match?: MatchRule;
  /**
   * Control prompts: the same filler and question with the fact left out, so accuracy is what
   * a model scores without ever being shown the fact (the chance level of a cache that lost it).
   */
  control?: boolean;
}

export interface TaskSample {
  task: TaskName;
  length: number;
  depth: number;
  index: number;
  /** BOS + everything before the question (ids). */
  context: number[];
  /** The question (ids); the answer follows it directly. */
  question: number[];
  answer: string;
  /** Ids of " " + answer as the tokenizer encodes them: answerIds[0] is the first answer token. */
  answerIds: number[];
  match: MatchRule;
  /** Token range [start, end) of `context` that covers the fact (tokens straddling its edges included). */
  factTokens: [number, number];
}

export const DEFAULT_MATCH: Record<TaskName, MatchRule> = {
  passkey: "digits",
  needle: "contains",
  "kv-recall": "digits",
  vt: "all-words",
};

/** A seed for one cell and sample: the same (seed, length, depth, index) gives the same sample. */
function cellSeed(seed: number, length: number, depth: number, index: number): number {
  let h = 0x811c9dc5 ^ seed;
  for (const v of [length, Math.round(depth * 1e6), index]) {
    h = Math.imul(h ^ v, 0x01000193) >>> 0;
    h = Math.imul(h ^ (h >>> 13), 0x5bd1e995) >>> 0;
  }
  return h >>> 0;
}

type Rand = () => number;
const pick = <T>(r: Rand, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
const randInt = (r: Rand, lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));

/** A number of lo..hi digits with a non-zero first digit. */
function digits(r: Rand, lo: number, hi: number): string {
  const n = randInt(r, lo, hi);
  let s = String(randInt(r, 1, 9));
  for (let i = 1; i < n; i++) s += String(randInt(r, 0, 9));
  return s;
}

/** Sentences of a text (each keeps its trailing space or newline). */
export function sentences(text: string): string[] {
  const out: string[] = [];
  let start = 0;
  for (let i = 0; i < text.length - 1; i++) {
    const c = text[i]!;
    if ((c === "." || c === "!" || c === "?") && (text[i + 1] === " " || text[i + 1] === "\n")) {
      out.push(text.slice(start, i + 2));
      start = i + 2;
    }
  }
  if (start < text.length) out.push(text.slice(start));
  return out.filter((s) => s.trim().length > 0);
}

/** What one task contributes to a prompt made of `k` filler units. */
interface Layout {
  /** Text before the filler, the filler units available, the fact, the question, the answer. */
  intro: string;
  units: (k: number) => string[];
  fact: string;
  question: string;
  answer: string;
  /** Build the context from k units with the fact at depth (overridden by vt). */
  context?: (k: number) => { text: string; factStart: string; factEnd: string };
}

function haystackUnits(r: Rand, haystack: string, label: string): (k: number) => string[] {
  const s = sentences(haystack);
  if (s.length < 2) throw new ConfigError(label, "the haystack text has fewer than 2 sentences");
  const start = Math.floor(r() * s.length);
  return (k) => Array.from({ length: k }, (_, i) => s[(start + i) % s.length]!);
}

function layoutOf(spec: TaskSpec, r: Rand, index: number, depth: number): Layout {
  switch (spec.task) {
    case "passkey": {
      const key = digits(r, 5, 7);
      const units = spec.haystack
        ? haystackUnits(r, spec.haystack, "haystack")
        : (k: number) => Array<string>(k).fill(PASSKEY.filler);
      return {
        intro: PASSKEY.intro,
        units,
        fact: PASSKEY.needle(key),
        question: PASSKEY.question,
        answer: key,
      };
    }
    case "needle": {
      if (!spec.haystack)
        throw new ConfigError("haystack", "the needle task needs a haystack text (--haystack FILE)");
      const n = spec.needle ?? BUILTIN_NEEDLES[index % BUILTIN_NEEDLES.length]!;
      const units = haystackUnits(r, spec.haystack, "haystack");
      return { intro: "", units, fact: `${n.statement} `, question: `\n${n.question}`, answer: n.answer };
    }
    case "kv-recall": {
      // Filler units are other key-value lines; the fact is the queried line.
      const used = new Set<string>();
      const name = () => {
        for (;;) {
          const k = `${pick(r, FIRST_NAMES)} ${pick(r, LAST_NAMES)}`;
          if (!used.has(k)) {
            used.add(k);
            return k;
          }
        }
      };
      const key = name();
      const value = digits(r, 3, 6);
      const others: string[] = [];
      const units = (k: number) => {
        while (others.length < k) others.push(KV_RECALL.line(name(), digits(r, 3, 6)));
        return others.slice(0, k);
      };
      return {
        intro: KV_RECALL.intro,
        units,
        fact: KV_RECALL.line(key, value),
        question: KV_RECALL.question(key),
        answer: value,
      };
    }
    case "vt": {
      const value = digits(r, 5, 5);
      const names = Array.from({ length: 4 }, () =>
        Array.from({ length: 5 }, () => String.fromCharCode(65 + Math.floor(r() * 26))).join(""),
      );
      const stmts = spec.control
        ? []
        : names.map((n, i) =>
            i === 0 ? VARIABLE_TRACKING.assignValue(n, value) : VARIABLE_TRACKING.assignVar(n, names[i - 1]!),
          );
      const units = spec.haystack
        ? haystackUnits(r, spec.haystack, "haystack")
        : (k: number) => Array<string>(k).fill(PASSKEY.filler);
      // The chain starts at `depth` and its links are spread evenly from there to the end.
      const context = (k: number) => {
        const u = units(k);
        const first = Math.round(depth * k);
        const slots = stmts.map((_, i) => first + Math.floor(((k - first) * i) / stmts.length));
        let text = VARIABLE_TRACKING.intro;
        let factStart = "";
        for (let i = 0; i <= k; i++) {
          for (let j = 0; j < stmts.length; j++)
            if (slots[j] === i) {
              if (j === 0) factStart = text;
              text += stmts[j];
            }
          if (i < k) text += u[i];
        }
        return { text, factStart, factEnd: factStart + (stmts[0] ?? "") };
      };
      return {
        intro: VARIABLE_TRACKING.intro,
        units,
        fact: stmts[0] ?? "",
        question: VARIABLE_TRACKING.question(value),
        answer: names.join(" "),
        context,
      };
    }
  }
}

function contextText(
  l: Layout,
  k: number,
  depth: number,
  control: boolean,
): { text: string; factStart: string; factEnd: string } {
  if (l.context) return l.context(k);
  const u = l.units(k);
  const fact = control ? "" : l.fact;
  const cut = Math.round(depth * k);
  const before = l.intro + u.slice(0, cut).join("");
  return {
    text: before + fact + u.slice(cut).join(""),
    factStart: before,
    factEnd: before + fact,
  };
}

/** How many leading tokens of `ids` (the whole prompt) lie wholly inside `prefix` (the context text). */
function splitPoint(tok: TextTokenizer, ids: number[], prefix: string): number {
  const direct = tok.encode(prefix);
  let s = direct.length;
  let same = s <= ids.length;
  for (let i = 0; same && i < s; i++) same = ids[i] === direct[i];
  if (same) return s;
  s = Math.min(s, ids.length);
  while (s > 0 && !prefix.startsWith(tok.decode(ids.slice(0, s)))) s--;
  return s;
}

/** Tokens of `ids` needed to cover all of `prefix` (splitPoint, plus a token straddling its end). */
function tokensCovering(tok: TextTokenizer, ids: number[], prefix: string): number {
  const s = splitPoint(tok, ids, prefix);
  return tok.decode(ids.slice(0, s)) === prefix ? s : Math.min(ids.length, s + 1);
}

/** One sample: the most filler units whose prompt fits in `length` tokens. */
function makeSample(
  tok: TextTokenizer,
  spec: TaskSpec,
  length: number,
  depth: number,
  index: number,
): TaskSample {
  const seed = cellSeed(spec.seed, length, depth, index);
  const layout = layoutOf(spec, mulberry32(seed), index, depth);
  const promptIds = (k: number) => {
    const c = contextText(layout, k, depth, spec.control === true);
    return { c, ids: tok.encode(c.text + layout.question) };
  };
  const base = promptIds(0).ids.length;
  if (base > length)
    throw new ConfigError(
      "lengths",
      `${spec.task}: ${length} tokens cannot hold the fact and the question (${base} tokens without filler); use a longer length`,
    );
  const unitTokens = Math.max(1, tok.encode(layout.units(1)[0]!, { addBos: false }).length);
  let k = Math.max(0, Math.floor((length - base) / unitTokens));
  let p = promptIds(k);
  while (k > 0 && p.ids.length > length) p = promptIds(--k);
  for (;;) {
    const next = promptIds(k + 1);
    if (next.ids.length > length) break;
    k++;
    p = next;
  }
  const split = splitPoint(tok, p.ids, p.c.text);
  const answerIds = tok.encode(` ${layout.answer}`, { addBos: false });
  return {
    task: spec.task,
    length,
    depth,
    index,
    context: p.ids.slice(0, split),
    question: p.ids.slice(split),
    answer: layout.answer,
    answerIds,
    match: spec.match ?? DEFAULT_MATCH[spec.task],
    factTokens: spec.control
      ? [0, 0]
      : [splitPoint(tok, p.ids, p.c.factStart), tokensCovering(tok, p.ids, p.c.factEnd)],
  };
}

export function validateTaskSpec(spec: TaskSpec): void {
  if (!(TASK_NAMES as readonly string[]).includes(spec.task))
    throw new ConfigError(
      "task",
      `expected one of ${TASK_NAMES.join(", ")}, got ${JSON.stringify(spec.task)}`,
    );
  if (spec.lengths.length === 0) throw new ConfigError("lengths", "expected at least one length");
  for (const l of spec.lengths)
    if (!Number.isInteger(l) || l < 16) throw new ConfigError("lengths", `expected integers >= 16, got ${l}`);
  if (spec.depths.length === 0) throw new ConfigError("depths", "expected at least one depth");
  for (const d of spec.depths)
    if (!(d >= 0 && d <= 1)) throw new ConfigError("depths", `expected numbers in [0, 1], got ${d}`);
  if (!Number.isInteger(spec.samples) || spec.samples < 1)
    throw new ConfigError("samples", `expected an integer >= 1, got ${spec.samples}`);
  if (!Number.isInteger(spec.seed) || spec.seed < 0)
    throw new ConfigError("seed", `expected an integer >= 0, got ${spec.seed}`);
}

/** Every sample of the grid, in (length, depth, index) order. */
export function generateSamples(tok: TextTokenizer, spec: TaskSpec): TaskSample[] {
  validateTaskSpec(spec);
  const out: TaskSample[] = [];
  for (const length of spec.lengths)
    for (const depth of spec.depths)
      for (let i = 0; i < spec.samples; i++) out.push(makeSample(tok, spec, length, depth, i));
  return out;
}
