/**
 * The neighbour slot last used to reach each destination (real server) id, so that a packet to a real
 * server costs one `ip[slot] === hop` check instead of a neighbour lookup (the transmit side validates the
 * slot). Grown on demand when a new destination id appears; reset when the destination set changes.
 */
export class DestinationNeighbors {
  private slots = new Int32Array(64).fill(-1);

  /** The cached slot for `dest`, -1 when none is cached. */
  slotOf(dest: number): number {
    return dest < this.slots.length ? this.slots[dest] : -1;
  }

  remember(dest: number, slot: number): void {
    if (dest >= this.slots.length) this.grow(dest);
    this.slots[dest] = slot;
  }

  /** Forget every cached slot. */
  reset(): void {
    this.slots.fill(-1);
  }

  private grow(dest: number): void {
    let n = this.slots.length;
    while (n <= dest) n *= 2;
    const a = new Int32Array(n).fill(-1);
    a.set(this.slots);
    this.slots = a;
  }
}
