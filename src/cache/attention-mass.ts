/**
 * Opt-in diagnostic: attention mass kept. For each query row, the share of the full,
 * uncompressed softmax mass (exact f32 keys of every token ever appended, at absolute
 * positions) that falls on the tokens the cache still retains: the KV-cache analogue of a
 * hit rate. 1 for `full`; lower means the policy dropped tokens this query wanted.
 *
 * Cost, which is why it is off by default: a shadow f32 copy of every key ever appended
 * (tokens seen x nKvHeads x headDim x 4 bytes per layer, NOT counted in memory(): it is
 * instrumentation, not cache), and one more full score pass per attend (O(seen x headDim)
 * per query row), i.e. the cost of uncompressed attention on top of the cache's own.
 */
export class AttentionMassMeter {
  private keys: Float32Array[] = []; // per head: (capacity, headDim)
  private pos: Int32Array[] = []; // per head: (capacity)
  private count: Int32Array;
  sum = 0;
  min = 1;
  rows = 0;

  constructor(
    nHeadsTotal: number,
    private readonly headDim: number,
  ) {
    for (let i = 0; i < nHeadsTotal; i++) {
      this.keys.push(new Float32Array(64 * headDim));
      this.pos.push(new Int32Array(64));
    }
    this.count = new Int32Array(nHeadsTotal);
  }

  /** Bytes allocated for the shadow keys and their positions. */
  physicalBytes(): number {
    let n = this.count.byteLength;
    for (let i = 0; i < this.keys.length; i++) n += this.keys[i]!.byteLength + this.pos[i]!.byteLength;
    return n;
  }

  /** k: (n, headDim) post-RoPE keys as the model produced them; positions: (n). */
  append(head: number, k: Float32Array, positions: Int32Array, n: number): void {
    const d = this.headDim;
    const c = this.count[head]!;
    if ((c + n) * d > this.keys[head]!.length) {
      let cap = this.pos[head]!.length;
      while (cap < c + n) cap *= 2;
      const nk = new Float32Array(cap * d);
      nk.set(this.keys[head]!.subarray(0, c * d));
      const np = new Int32Array(cap);
      np.set(this.pos[head]!.subarray(0, c));
      this.keys[head] = nk;
      this.pos[head] = np;
    }
    this.keys[head]!.set(k.subarray(0, n * d), c * d);
    this.pos[head]!.set(positions.subarray(0, n), c);
    this.count[head] = c + n;
  }

  /** q: (nRows, headDim) as given to attend; retained: positions the cache holds now. */
  measure(
    head: number,
    q: Float32Array,
    qPos: Int32Array,
    nRows: number,
    scale: number,
    retained: Set<number>,
  ) {
    const d = this.headDim;
    const n = this.count[head]!;
    const keys = this.keys[head]!;
    const pos = this.pos[head]!;
    const scores = new Float64Array(n);
    for (let r = 0; r < nRows; r++) {
      let max = Number.NEGATIVE_INFINITY;
      for (let j = 0; j < n; j++) {
        if (pos[j]! > qPos[r]!) {
          scores[j] = Number.NEGATIVE_INFINITY;
          continue;
        }
        let dot = 0;
        for (let i = 0; i < d; i++) dot += q[r * d + i]! * keys[j * d + i]!;
        scores[j] = dot * scale;
        if (scores[j]! > max) max = scores[j]!;
      }
      if (max === Number.NEGATIVE_INFINITY) continue;
      let total = 0;
      let kept = 0;
      for (let j = 0; j < n; j++) {
        if (scores[j] === Number.NEGATIVE_INFINITY) continue;
        const e = Math.exp(scores[j]! - max);
        total += e;
        if (retained.has(pos[j]!)) kept += e;
      }
      const share = kept / total;
      this.sum += share;
      if (share < this.min) this.min = share;
      this.rows++;
    }
  }

  summary() {
    return { mean: this.rows ? this.sum / this.rows : 1, min: this.rows ? this.min : 1, rows: this.rows };
  }

  reset(): void {
    this.count.fill(0);
    this.sum = 0;
    this.min = 1;
    this.rows = 0;
  }
}
