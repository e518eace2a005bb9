// A set that keeps only the newest `capacity` keys, oldest out first, in O(1) per key. (A Map
// trimmed by deleting from the front of its iteration order costs more with every trim: V8 keeps
// deleted entries as holes that each new iteration walks over until the table is rebuilt.)
export class RecentKeys {
  private readonly set = new Set<string>();
  private readonly ring: (string | undefined)[];
  private next = 0;

  constructor(readonly capacity: number) {
    this.ring = new Array<string | undefined>(capacity);
  }

  get size(): number {
    return this.set.size;
  }

  has(key: string): boolean {
    return this.set.has(key);
  }

  /** Adds a key (a key already held is left where it is); the oldest goes once capacity is reached. */
  add(key: string): void {
    if (this.capacity <= 0) return;
    const size = this.set.size;
    this.set.add(key);
    if (this.set.size === size) return; // held already
    const old = this.ring[this.next];
    if (old !== undefined) this.set.delete(old);
    this.ring[this.next] = key;
    this.next = this.next + 1 === this.capacity ? 0 : this.next + 1;
  }
}
