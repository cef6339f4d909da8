// Randomized Hadamard rotation of rows in place, bit for bit src/quant/hadamard.ts hadamardRows
// (QuaRot, Ashkboos et al. 2024, arXiv:2404.00456; TurboQuant's rotation): signs, then per
// power-of-two block (the binary digits of n, largest first) the fast Walsh-Hadamard butterflies
// in f32 and the factor 1 / sqrt(size) as the reference's f64, rounded once to f32.

/** x (nRows, n) f32 in place; signs (n) f32 +-1; inverse: butterflies, factor, then signs. */
export function hadamardRows(x: usize, nRows: i32, n: i32, signs: usize, inverse: bool): void {
  for (let r = 0; r < nRows; r++) {
    const row = x + ((<usize>r * <usize>n) << 2);
    if (!inverse) for (let i = 0; i < n; i++) store<f32>(row + (<usize>i << 2), load<f32>(row + (<usize>i << 2)) * load<f32>(signs + (<usize>i << 2)));
    let start = 0;
    for (let size = n > 0 ? 1 << (31 - clz(n)) : 0; size >= 1; size >>= 1) {
      if (n - start < size) continue;
      const b = row + (<usize>start << 2);
      for (let h = 1; h < size; h <<= 1)
        for (let i = 0; i < size; i += h << 1)
          for (let j = i; j < i + h; j++) {
            const pa = b + (<usize>j << 2);
            const pb = b + (<usize>(j + h) << 2);
            const a = load<f32>(pa);
            const c = load<f32>(pb);
            store<f32>(pa, a + c);
            store<f32>(pb, a - c);
          }
      const norm: f64 = 1 / Math.sqrt(<f64>size);
      for (let i = start; i < start + size; i++) {
        const p = row + (<usize>i << 2);
        if (inverse) store<f32>(p, <f32>(<f64>load<f32>(p) * norm * <f64>load<f32>(signs + (<usize>i << 2))));
        else store<f32>(p, <f32>(<f64>load<f32>(p) * norm));
      }
      start += size;
    }
  }
}
