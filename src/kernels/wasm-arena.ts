/**
 * Arena allocator over the WASM linear memory, managed from JS: first-fit over a free list
 * sorted by offset, coalescing neighbours on free, bump allocation at the top, and memory.grow
 * when the top passes the end. Every block is 16-byte aligned (v128 loads) and at least 16 bytes.
 */
const ALIGN = 16;
const PAGE = 65536;

interface Block {
  off: number;
  size: number;
}

export class Arena {
  private top: number;
  private readonly freeList: Block[] = []; // sorted by off, never adjacent (coalesced)
  private readonly live = new Map<number, number>(); // off -> size
  private inUse = 0;

  constructor(
    private readonly memory: WebAssembly.Memory,
    readonly base: number,
  ) {
    this.top = roundUp(base, ALIGN);
  }

  /** Bytes held by live blocks. */
  get bytesInUse(): number {
    return this.inUse;
  }

  /** High-water mark of the arena (bytes from 0). */
  get end(): number {
    return this.top;
  }

  alloc(bytes: number): number {
    const size = roundUp(Math.max(bytes, 1), ALIGN);
    for (let i = 0; i < this.freeList.length; i++) {
      const b = this.freeList[i]!;
      if (b.size < size) continue;
      const off = b.off;
      if (b.size === size) this.freeList.splice(i, 1);
      else {
        b.off += size;
        b.size -= size;
      }
      return this.take(off, size);
    }
    const off = this.top;
    const need = off + size;
    const have = this.memory.buffer.byteLength;
    if (need > have) this.memory.grow(Math.ceil((need - have) / PAGE));
    this.top = need;
    return this.take(off, size);
  }

  /** Free the block starting at off. Returns false when off is not a live block. */
  release(off: number): boolean {
    const size = this.live.get(off);
    if (size === undefined) return false;
    this.live.delete(off);
    this.inUse -= size;
    // Insert in order, then merge with the previous and next free blocks.
    let i = 0;
    while (i < this.freeList.length && this.freeList[i]!.off < off) i++;
    this.freeList.splice(i, 0, { off, size });
    const next = this.freeList[i + 1];
    if (next && off + size === next.off) {
      this.freeList[i]!.size += next.size;
      this.freeList.splice(i + 1, 1);
    }
    const prev = this.freeList[i - 1];
    if (prev && prev.off + prev.size === off) {
      prev.size += this.freeList[i]!.size;
      this.freeList.splice(i, 1);
      i--;
    }
    // A free block touching the top shrinks the arena instead of staying on the list.
    const last = this.freeList[this.freeList.length - 1];
    if (last && last.off + last.size === this.top) {
      this.top = last.off;
      this.freeList.pop();
    }
    return true;
  }

  private take(off: number, size: number): number {
    this.live.set(off, size);
    this.inUse += size;
    return off;
  }
}

function roundUp(x: number, a: number): number {
  return Math.ceil(x / a) * a;
}
