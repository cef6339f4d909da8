/**
 * llama.cpp agreement for kvlab's cache types (issue 16 item 5): the built-in model
 * (models/sotu-llama-long, head_dim 64) written as a GGUF with its exact weights (fp16 upcast to
 * f32, as kvlab computes), evaluated by llama.cpp through node-llama-cpp with kvlab's llama.cpp
 * protocol (src/eval/perplexity.ts: segments of n_ctx tokens from an empty cache, first token
 * BOS, NLL of positions n_ctx/2 .. n_ctx-2), for each K/V cache type; next to
 * `npx kvlab ppl --protocol llamacpp --ctx <n> --cache <spec>` on the same token ids.
 *
 *   node --import tsx bench/peers/llamacpp-agreement.ts [--ctx 512] [--chunks N] [--threads 2]
 *        [--only llamacpp|kvlab] [--rows f16,q4_0,f16/q4_0,...] [--out results/llamacpp-agreement]
 *
 * Rows are cached in <out>/rows-llamacpp.json and rows-kvlab.json (a rerun skips rows it has;
 * delete a file to redo) and the table is written to <out>/agreement.csv and table.md.
 * `--only table` only rewrites the table from the cached rows.
 *
 * How llama.cpp runs (node-llama-cpp's prebuilt CPU binaries, no build):
 * - flash attention on for every type (llama.cpp needs it for a quantized V cache);
 *   experimentalKvCacheKeyType / experimentalKvCacheValueType set -ctk / -ctv;
 * - the model is written as arch `qwen2` with zero q/k/v biases, whose RoPE is the NeoX
 *   (rotate-half) layout of the HF weights: a `llama` GGUF would need Q/K rows permuted to the
 *   interleaved layout, which reorders each key's elements and so puts different elements into
 *   each 32-element ggml block than kvlab's blocks (a different quantization, not a like-for-like
 *   comparison). Adding zero biases is exact;
 * - logits come from controlledEvaluate (all vocab logits of each scored position), and
 *   NLL = -(logit[target] - max - log(sum exp(logit - max))) in f64 (node-llama-cpp's
 *   totalLogitWeight sums over the filtered logits only, so it is not used);
 * - llama.cpp rotates quantized K/V caches with a Hadamard transform by default in this version
 *   (attn_rot_k / attn_rot_v; LLAMA_ATTN_ROT_DISABLE=1 turns it off): every quantized row is run
 *   both ways ("rot" column), and kvlab's unrotated codecs compare with rot = off.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { type DataTensor, type KV, writeGgufTensors } from "./gguf-writer.ts";
import { cpuLlama, importNodeLlamaCpp } from "./node-llama-cpp.ts";

const ROOT = resolve(fileURLToPath(new URL("../..", import.meta.url)));
const MODEL_DIR = join(ROOT, "models/sotu-llama-long");
const TEXT = join(ROOT, "data/sotu/heldout.txt");

const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i += 2)
  args.set(process.argv[i]!.replace(/^--/, ""), process.argv[i + 1]!);
const CTX = Number(args.get("ctx") ?? 512);
const THREADS = Number(args.get("threads") ?? 2);
const OUT = resolve(ROOT, args.get("out") ?? "results/llamacpp-agreement");
const ONLY = args.get("only");
const TYPES = ["q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "iq4_nl"];
/** Rows: "K/V" (one name = both sides). */
/** kvlab's query options for quantized keys: exact (f32) and q8_0 (llama.cpp's CPU dot products). */
/** llama.cpp's cache rotation for quantized rows: off (LLAMA_ATTN_ROT_DISABLE=1) and/or on (its default). */
const ROTS = (args.get("rot") ?? "off,on").split(",") as ("off" | "on")[];
const QUERIES = (args.get("queries") ?? "f32,q8").split(",");
const ROWS = (
  args.get("rows") ?? ["f32", "f16", ...TYPES, ...TYPES.flatMap((t) => [`f16/${t}`, `${t}/f16`])].join(",")
).split(",");

interface Row {
  who: "llamacpp" | "kvlab";
  k: string;
  v: string;
  /** llama.cpp: the cache rotation (on = its default, off = LLAMA_ATTN_ROT_DISABLE=1); kvlab: "off". */
  rot: "on" | "off";
  /** kvlab: queries "f32" (exact) or "q8" (q8_0 queries, as llama.cpp's CPU dot products); llama.cpp: what it does. */
  query: string;
  ppl: number;
  nll: number;
  tokens: number;
  chunks: number;
  seconds: number;
  command?: string;
  llamaCpp?: string;
}

mkdirSync(OUT, { recursive: true });
// One rows file per side, so a llama.cpp run and a kvlab run can go at the same time.
const rowsFile = (who: Row["who"]) => join(OUT, `rows-${who}.json`);
const load = (who: Row["who"]): Row[] =>
  existsSync(rowsFile(who)) ? JSON.parse(readFileSync(rowsFile(who), "utf8")) : [];
const rows: Row[] = [...load("llamacpp"), ...load("kvlab")];
const save = (who: Row["who"]) =>
  writeFileSync(
    rowsFile(who),
    `${JSON.stringify([...load(who).filter((r) => !rows.includes(r)), ...rows.filter((r) => r.who === who)].filter(uniq()), null, 1)}\n`,
  );
/** Drop repeated rows (same side, types, rotation, query and chunks), keeping the first. */
function uniq() {
  const seen = new Set<string>();
  return (r: Row) => {
    const key = [r.who, r.k, r.v, r.rot, r.query, r.chunks].join("|");
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  };
}
const have = (r: Partial<Row>) =>
  rows.some(
    (x) =>
      x.who === r.who &&
      x.k === r.k &&
      x.v === r.v &&
      x.rot === r.rot &&
      x.query === r.query &&
      x.chunks === r.chunks,
  );
const sides = (row: string) => {
  const [k, v = k] = row.split("/");
  return { k: k!, v: v! };
};
const quantized = (t: string) => t !== "f32" && t !== "f16";

// ---- token ids: kvlab's tokenizer on the whole text (BOS first), the ids both sides score ----

async function tokenIds(): Promise<number[]> {
  const { loadHfTokenizer } = await import("../../src/model/tokenizer.ts");
  const cfg = JSON.parse(readFileSync(join(MODEL_DIR, "config.json"), "utf8"));
  const tok = loadHfTokenizer(MODEL_DIR, { bosId: cfg.bos_token_id, eosId: cfg.eos_token_id });
  const ids = tok.encode(readFileSync(TEXT, "utf8"));
  const ref = JSON.parse(readFileSync(join(MODEL_DIR, "reference.json"), "utf8"));
  if (ids.length !== ref.tokens_with_bos)
    throw new Error(`tokenized ${ids.length} ids, reference.json says ${ref.tokens_with_bos}`);
  return ids;
}

// ---- GGUF of the built-in model ----

function readSafetensors(file: string): Map<string, { shape: number[]; data: Float32Array }> {
  const buf = readFileSync(file);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString("utf8"));
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [name, e] of Object.entries<{ dtype: string; shape: number[]; data_offsets: [number, number] }>(
    header,
  )) {
    if (name === "__metadata__") continue;
    if (e.dtype !== "F16") throw new Error(`${name}: dtype ${e.dtype}, expected F16`);
    const raw = buf.subarray(8 + n + e.data_offsets[0], 8 + n + e.data_offsets[1]);
    const data = new Float32Array(raw.length / 2);
    for (let i = 0; i < data.length; i++) data[i] = halfToFloat(raw.readUInt16LE(2 * i));
    out.set(name, { shape: e.shape, data });
  }
  return out;
}

function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? Number.NaN : s * Number.POSITIVE_INFINITY;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

/** The placeholder vocab's unknown token (any id other than BOS/EOS). */
const UNK = 2;

async function writeModelGguf(path: string): Promise<void> {
  const cfg = JSON.parse(readFileSync(join(MODEL_DIR, "config.json"), "utf8"));
  const w = readSafetensors(join(MODEL_DIR, "model.safetensors"));
  const get = (name: string) => {
    const t = w.get(name);
    if (!t) throw new Error(`model.safetensors has no ${name}`);
    // A PyTorch (out, in) matrix is GGUF [in, out]: dims innermost first, same bytes.
    return { dims: [...t.shape].reverse(), data: t.data };
  };
  const a = "qwen2";
  const hd = cfg.head_dim ?? cfg.hidden_size / cfg.num_attention_heads;
  const tensors: DataTensor[] = [{ name: "token_embd.weight", ...get("model.embed_tokens.weight") }];
  for (let l = 0; l < cfg.num_hidden_layers; l++) {
    const p = `model.layers.${l}.`;
    const b = `blk.${l}.`;
    tensors.push(
      { name: `${b}attn_norm.weight`, ...get(`${p}input_layernorm.weight`) },
      { name: `${b}attn_q.weight`, ...get(`${p}self_attn.q_proj.weight`) },
      { name: `${b}attn_k.weight`, ...get(`${p}self_attn.k_proj.weight`) },
      { name: `${b}attn_v.weight`, ...get(`${p}self_attn.v_proj.weight`) },
      {
        name: `${b}attn_q.bias`,
        dims: [cfg.num_attention_heads * hd],
        data: new Float32Array(cfg.num_attention_heads * hd),
      },
      {
        name: `${b}attn_k.bias`,
        dims: [cfg.num_key_value_heads * hd],
        data: new Float32Array(cfg.num_key_value_heads * hd),
      },
      {
        name: `${b}attn_v.bias`,
        dims: [cfg.num_key_value_heads * hd],
        data: new Float32Array(cfg.num_key_value_heads * hd),
      },
      { name: `${b}attn_output.weight`, ...get(`${p}self_attn.o_proj.weight`) },
      { name: `${b}ffn_norm.weight`, ...get(`${p}post_attention_layernorm.weight`) },
      { name: `${b}ffn_gate.weight`, ...get(`${p}mlp.gate_proj.weight`) },
      { name: `${b}ffn_up.weight`, ...get(`${p}mlp.up_proj.weight`) },
      { name: `${b}ffn_down.weight`, ...get(`${p}mlp.down_proj.weight`) },
    );
  }
  tensors.push({ name: "output_norm.weight", ...get("model.norm.weight") });
  if (!cfg.tie_word_embeddings) tensors.push({ name: "output.weight", ...get("lm_head.weight") });
  // A placeholder SentencePiece vocab of the right size (ids are fed directly; llama.cpp never
  // tokenizes, but its SPM loader looks up the byte tokens): BOS/EOS/unk as control tokens at the
  // model's ids, the 256 byte tokens, then plain pieces.
  const tokens: string[] = [];
  const types: number[] = [];
  let byte = 0;
  for (let i = 0; i < cfg.vocab_size; i++) {
    if (i === cfg.bos_token_id || i === cfg.eos_token_id || i === UNK) {
      tokens.push(i === cfg.bos_token_id ? "<s>" : i === cfg.eos_token_id ? "</s>" : "<unk>");
      types.push(i === UNK ? 2 : 3);
    } else if (byte < 256) {
      tokens.push(`<0x${(byte++).toString(16).toUpperCase().padStart(2, "0")}>`);
      types.push(6);
    } else {
      tokens.push(`\u2581t${i}`);
      types.push(1);
    }
  }
  const kvs: KV[] = [
    ["general.architecture", "str", a],
    ["general.name", "str", "kvlab-sotu-llama-long"],
    ["general.file_type", "u32", 0],
    ["general.alignment", "u32", 32],
    [`${a}.context_length`, "u32", cfg.max_position_embeddings],
    [`${a}.embedding_length`, "u32", cfg.hidden_size],
    [`${a}.block_count`, "u32", cfg.num_hidden_layers],
    [`${a}.feed_forward_length`, "u32", cfg.intermediate_size],
    [`${a}.rope.dimension_count`, "u32", hd],
    [`${a}.attention.head_count`, "u32", cfg.num_attention_heads],
    [`${a}.attention.head_count_kv`, "u32", cfg.num_key_value_heads],
    [`${a}.attention.key_length`, "u32", hd],
    [`${a}.attention.value_length`, "u32", hd],
    [`${a}.attention.layer_norm_rms_epsilon`, "f32", cfg.rms_norm_eps],
    [`${a}.rope.freq_base`, "f32", cfg.rope_theta],
    ["tokenizer.ggml.model", "str", "llama"],
    ["tokenizer.ggml.tokens", "strs", tokens],
    ["tokenizer.ggml.scores", "f32s", tokens.map(() => 0)],
    ["tokenizer.ggml.token_type", "i32s", types],
    ["tokenizer.ggml.bos_token_id", "u32", cfg.bos_token_id],
    ["tokenizer.ggml.unknown_token_id", "u32", UNK],
    ["tokenizer.ggml.eos_token_id", "u32", cfg.eos_token_id],
  ];
  await writeGgufTensors(path, kvs, tensors);
}

// ---- llama.cpp through node-llama-cpp ----

async function runLlamaCpp(ids: number[], bos: number, nChunks: number): Promise<void> {
  const gguf = join(ROOT, "tmp", "sotu-llama-long.f32.gguf");
  mkdirSync(join(ROOT, "tmp"), { recursive: true });
  await writeModelGguf(gguf);
  const nlc = await importNodeLlamaCpp();
  const logs: string[] = [];
  const llama = await cpuLlama(nlc, THREADS, (_level, message) => logs.push(message));
  const release = `${llama.llamaCppRelease.repo}@${llama.llamaCppRelease.release} (node-llama-cpp ${nlcVersion()})`;
  const model = await llama.loadModel({ modelPath: gguf, gpuLayers: 0 });
  const first = CTX / 2;
  const vocab = Number(JSON.parse(readFileSync(join(MODEL_DIR, "config.json"), "utf8")).vocab_size);
  for (const row of ROWS) {
    const { k, v } = sides(row);
    for (const rot of quantized(k) || quantized(v) ? ROTS : (["off"] as const)) {
      // The query as llama.cpp's CPU attention takes it: converted to the K type's vec_dot type.
      const query = quantized(k)
        ? k === "q4_1" || k === "q5_1"
          ? "q8_1"
          : "q8_0"
        : k === "f16"
          ? "f16"
          : "f32 (no flash attention)";
      if (have({ who: "llamacpp", k, v, rot, query, chunks: nChunks })) continue;
      if (rot === "off") process.env.LLAMA_ATTN_ROT_DISABLE = "1";
      else delete process.env.LLAMA_ATTN_ROT_DISABLE;
      logs.length = 0;
      const t0 = performance.now();
      const context = await model.createContext({
        contextSize: CTX,
        batchSize: CTX,
        threads: { ideal: THREADS, min: 1 },
        // With flash attention llama.cpp casts an f32 cache to f16 before attending
        // (llama-graph.cpp build_attn_mha), so its "f32" would be f16: the f32 row runs without it.
        flashAttention: !(k === "f32" && v === "f32"),
        experimentalKvCacheKeyType: k.toUpperCase(),
        experimentalKvCacheValueType: v.toUpperCase(),
        sequences: 1,
      });
      if (!context.flashAttention && !(k === "f32" && v === "f32"))
        throw new Error(`${row}: flash attention is off`);
      const seq = context.getSequence();
      let nll = 0;
      let n = 0;
      for (let c = 0; c < nChunks; c++) {
        const chunk = ids.slice(c * CTX, (c + 1) * CTX);
        chunk[0] = bos;
        await seq.clearHistory();
        const input = chunk.map((t, j) =>
          j >= first && j <= CTX - 2 ? [t, { generateNext: { logits: true } }] : t,
        );
        const out = await seq.controlledEvaluate(input);
        for (let j = first; j <= CTX - 2; j++) {
          const next = out[j]?.next;
          const logits: Map<number, number> = next.logits;
          if (logits.size !== vocab) throw new Error(`${logits.size} logits, vocab ${vocab}`);
          let max = Number.NEGATIVE_INFINITY;
          for (const x of logits.values()) max = Math.max(max, x);
          let sum = 0;
          for (const x of logits.values()) sum += Math.exp(x - max);
          nll -= logits.get(chunk[j + 1]!)! - max - Math.log(sum);
          n++;
        }
      }
      const seconds = (performance.now() - t0) / 1000;
      const rotLog = logs.filter((l) => /attn_rot|rotation/.test(l)).map((l) => l.trim());
      await context.dispose();
      rows.push({
        who: "llamacpp",
        k,
        v,
        rot,
        query,
        ppl: Math.exp(nll / n),
        nll: nll / n,
        tokens: n,
        chunks: nChunks,
        seconds,
        llamaCpp: `${release}${rotLog.length ? `; ${rotLog.join(" | ")}` : ""}`,
      });
      save("llamacpp");
      console.log(
        `llama.cpp ${row} rot ${rot}: PPL ${Math.exp(nll / n).toFixed(4)} (${seconds.toFixed(0)} s)`,
      );
    }
  }
  await model.dispose();
  await llama.dispose();
}

function nlcVersion(): string {
  const p = fileURLToPath(new URL("./node_modules/node-llama-cpp/package.json", import.meta.url));
  return JSON.parse(readFileSync(p, "utf8")).version;
}

// ---- kvlab ----

/**
 * kvlab's spec for a row: both sides' codecs, `query: q8` for q8_0 queries, and with `rot`
 * kvlab's Hadamard rotation (seeded random signs) on each quantized side. llama.cpp's rotation
 * is the plain normalized Sylvester Hadamard matrix (PR 21038), so a rotated kvlab row is the
 * same kind of transform, not the same matrix.
 */
function kvlabSpec(k: string, v: string, query: string, rot: "on" | "off"): string {
  const side = (t: string) => (rot === "on" && quantized(t) ? { type: t, rotation: "hadamard" } : t);
  const spec: Record<string, unknown> =
    k === v && rot === "off" ? { codec: k } : { codec: { keys: side(k), values: side(v) } };
  if (query === "q8") spec.query = "q8";
  return JSON.stringify(spec);
}

function runKvlab(nChunks: number): void {
  for (const given of ROWS) {
    // "q4_0@rot": kvlab with its Hadamard rotation on the quantized sides.
    const rot = given.endsWith("@rot") ? "on" : "off";
    const row = given.replace(/@rot$/, "");
    const { k, v } = sides(row);
    for (const query of quantized(k) ? QUERIES : ["f32"]) {
      if (have({ who: "kvlab", k, v, rot, query, chunks: nChunks })) continue;
      const spec = kvlabSpec(k, v, query, rot);
      const argv = [
        "kvlab",
        "ppl",
        "--model",
        "models/sotu-llama-long",
        "--text",
        "data/sotu/heldout.txt",
        "--protocol",
        "llamacpp",
        "--ctx",
        String(CTX),
        "--chunks",
        String(nChunks),
        "--cache",
        spec,
        "--json",
      ];
      const t0 = performance.now();
      const r = spawnSync("npx", argv, { cwd: ROOT, encoding: "utf8", maxBuffer: 1 << 26 });
      if (r.status !== 0) throw new Error(`npx ${argv.join(" ")} failed:\n${r.stderr}`);
      const j = JSON.parse(r.stdout.trim().split("\n").pop()!);
      rows.push({
        who: "kvlab",
        k,
        v,
        rot,
        query,
        ppl: j.ppl,
        nll: j.nll,
        tokens: j.tokens,
        chunks: j.chunks,
        seconds: (performance.now() - t0) / 1000,
        command: `npx ${argv.slice(0, -3).join(" ")} --cache '${spec}' --json`,
      });
      save("kvlab");
      console.log(`kvlab ${row} query ${query}: PPL ${j.ppl.toFixed(4)}`);
    }
  }
}

// ---- table ----

/**
 * Every llama.cpp row next to every kvlab row of the same -ctk/-ctv at the same chunk count:
 * PPL, relative difference, PPL change against each side's own f32 row and their ratio.
 * like_for_like: same rotation on both sides (llama.cpp's plain Hadamard and kvlab's seeded
 * one are the same kind of transform, not the same matrix: "rotated" rows say so).
 * Returns [csv, markdown].
 */
function table(): [string, string] {
  const csv = [
    "chunks,scored_tokens,k,v,llamacpp_rot,llamacpp_query,llamacpp_ppl,kvlab_rot,kvlab_query,kvlab_ppl,rel_diff,dppl_llamacpp,dppl_kvlab,dppl_ratio,like_for_like",
  ];
  const md = [
    "| chunks | -ctk / -ctv | llama.cpp rotation | llama.cpp query | llama.cpp PPL | kvlab | kvlab PPL | rel. diff | ΔPPL llama.cpp | ΔPPL kvlab | ratio |",
    "|---|---|---|---|---|---|---|---|---|---|---|",
  ];
  const chunkCounts = [...new Set(rows.map((r) => r.chunks))].sort((a, b) => b - a);
  const order = [
    ...new Set([
      ...ROWS.map((r) => r.replace(/@rot$/, "")),
      ...rows.map((r) => (r.k === r.v ? r.k : `${r.k}/${r.v}`)),
    ]),
  ];
  for (const nc of chunkCounts) {
    const base = (who: string) =>
      rows.find((r) => r.who === who && r.k === "f32" && r.v === "f32" && r.chunks === nc);
    const lb = base("llamacpp");
    const kb = base("kvlab");
    for (const row of order) {
      const { k, v } = sides(row);
      const at = (who: string) =>
        rows.filter((r) => r.who === who && r.k === k && r.v === v && r.chunks === nc);
      for (const l of at("llamacpp"))
        for (const kv of at("kvlab")) {
          const dl = lb ? l.ppl - lb.ppl : Number.NaN;
          const dk = kb ? kv.ppl - kb.ppl : Number.NaN;
          const rel = (kv.ppl - l.ppl) / l.ppl;
          const ratio = dl !== 0 ? dk / dl : Number.NaN;
          const like = l.rot === kv.rot || (!quantized(k) && !quantized(v));
          csv.push(
            [nc, l.tokens, k, v, l.rot, l.query, l.ppl.toFixed(6), kv.rot, kv.query, kv.ppl.toFixed(6)]
              .concat([
                rel.toExponential(3),
                dl.toFixed(6),
                dk.toFixed(6),
                ratio.toFixed(3),
                like ? "yes" : "no",
              ])
              .join(","),
          );
          const spec = `${kv.rot === "on" ? "rotated, " : ""}${kv.query === "q8" ? "q8 query" : "exact query"}`;
          md.push(
            `| ${nc} | ${k} / ${v} | ${l.rot} | ${l.query} | ${l.ppl.toFixed(5)} | ${spec} | ${kv.ppl.toFixed(5)} | ` +
              `${rel >= 0 ? "+" : ""}${(100 * rel).toFixed(4)}% | ${dl >= 0 ? "+" : ""}${dl.toFixed(5)} | ` +
              `${dk >= 0 ? "+" : ""}${dk.toFixed(5)} | ${Number.isFinite(ratio) ? ratio.toFixed(2) : "-"} |`,
          );
        }
    }
  }
  return [`${csv.join("\n")}\n`, `${md.join("\n")}\n`];
}

const ids = await tokenIds();
const cfg = JSON.parse(readFileSync(join(MODEL_DIR, "config.json"), "utf8"));
const nChunks = Number(args.get("chunks") ?? Math.floor(ids.length / CTX));
if (ONLY !== "kvlab" && ONLY !== "table") await runLlamaCpp(ids, cfg.bos_token_id, nChunks);
if (ONLY !== "llamacpp" && ONLY !== "table") runKvlab(nChunks);
const [csv, md] = table();
writeFileSync(join(OUT, "agreement.csv"), csv);
writeFileSync(join(OUT, "table.md"), md);
console.log(md);
