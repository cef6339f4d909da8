/**
 * Text <-> token ids. Every format's vocabulary ends up as a `@huggingface/tokenizers`
 * Tokenizer (a tokenizer.json as HF writes it, or one built from a SentencePiece vocab by
 * sp-vocab.ts), so there is exactly one tokenization algorithm in kvlab and it is not ours.
 */
import { Tokenizer } from "@huggingface/tokenizers";
import { ModelFormatError } from "../errors.ts";
import { existsSync, join } from "../platform/host.ts";
import { readJson } from "./json-strict.ts";

export interface TextTokenizer {
  readonly vocabSize: number;
  readonly bosId: number | undefined;
  readonly eosId: number | undefined;
  /**
   * The model's convention (llama.cpp's add_bos): whether a sequence starts with BOS. True for
   * Llama/SentencePiece vocabs, false for e.g. Qwen2. The llama.cpp protocol puts BOS at the
   * start of each segment only when this is true.
   */
  readonly addsBos: boolean;
  /** Token ids of `text`; BOS first when addBos (default: addsBos) and the vocab has one. */
  encode(text: string, opts?: { addBos?: boolean }): number[];
  /** Text of `ids`, special tokens dropped. */
  decode(ids: number[]): string;
  /**
   * Frees the vocabulary's memory (tens of MiB for a 50K-150K vocab) once the text is tokenized;
   * the ids and flags above stay, and the next encode or decode builds it again.
   */
  release?(): void;
}

export class HfTokenizer implements TextTokenizer {
  readonly vocabSize: number;
  private built: Tokenizer | null;
  constructor(
    tok: Tokenizer,
    /** Builds the same Tokenizer again after release() (from the file or the model's vocab). */
    private readonly rebuild: () => Tokenizer,
    readonly bosId: number | undefined,
    readonly eosId: number | undefined,
    readonly addsBos: boolean,
  ) {
    this.built = tok;
    this.vocabSize = tok.get_vocab(true).size;
  }

  private get tok(): Tokenizer {
    this.built ??= this.rebuild();
    return this.built;
  }

  release(): void {
    this.built = null;
  }

  encode(text: string, opts: { addBos?: boolean } = {}): number[] {
    // Special tokens are added here rather than by the post-processor so that "addBos" means
    // the same for every vocab (some tokenizer.json files add BOS, some never do).
    const ids = this.tok.encode(text, { add_special_tokens: false }).ids;
    if ((opts.addBos ?? this.addsBos) && this.bosId !== undefined) ids.unshift(this.bosId);
    return ids;
  }

  decode(ids: number[]): string {
    return this.tok.decode(ids, { skip_special_tokens: true });
  }

  tokenToId(token: string): number | undefined {
    return this.tok.token_to_id(token);
  }
}

function tokenContent(t: unknown): string | undefined {
  if (typeof t === "string") return t;
  if (typeof t === "object" && t !== null && typeof (t as { content?: unknown }).content === "string")
    return (t as { content: string }).content;
  return undefined;
}

/**
 * Build a tokenizer from tokenizer.json objects (as in a HF directory or built by sp-vocab.ts).
 * json: makes the tokenizer.json object, called again when a released tokenizer is used, so the
 * object itself is not kept alive beside the Tokenizer built from it.
 */
export function tokenizerFromJson(
  json: () => object,
  config: Record<string, unknown>,
  ids: { bosId?: number; eosId?: number; addBos?: boolean },
  file: string,
): HfTokenizer {
  const build = () => {
    try {
      return new Tokenizer(json(), config);
    } catch (err) {
      throw new ModelFormatError(file, `cannot build the tokenizer: ${(err as Error).message}`);
    }
  };
  const tok = build();
  const bosTok = tokenContent(config.bos_token);
  const eosTok = tokenContent(config.eos_token);
  const bosId = ids.bosId ?? (bosTok !== undefined ? tok.token_to_id(bosTok) : undefined);
  const eosId = ids.eosId ?? (eosTok !== undefined ? tok.token_to_id(eosTok) : undefined);
  // add_bos_token when the config says; otherwise whether the post-processor prepends BOS.
  let addsBos: boolean;
  if (typeof ids.addBos === "boolean") addsBos = ids.addBos;
  else if (typeof config.add_bos_token === "boolean") addsBos = config.add_bos_token;
  else addsBos = bosId !== undefined && tok.encode("a", { add_special_tokens: true }).ids[0] === bosId;
  return new HfTokenizer(tok, build, bosId, eosId, addsBos && bosId !== undefined);
}

/** Load dir/tokenizer.json (+ tokenizer_config.json when present). */
export function loadHfTokenizer(dir: string, ids: { bosId?: number; eosId?: number }): HfTokenizer {
  const file = join(dir, "tokenizer.json");
  if (!existsSync(file))
    throw new ModelFormatError(file, "missing tokenizer.json; kvlab needs the HF fast-tokenizer file");
  const cfgFile = join(dir, "tokenizer_config.json");
  const config = existsSync(cfgFile) ? (readJson(cfgFile) as Record<string, unknown>) : {};
  return tokenizerFromJson(() => readJson(file) as object, config, ids, file);
}
