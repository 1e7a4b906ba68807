/**
 * The consistent-hash ring that places each OpenFGA store (a tenant) on one cluster member.
 *
 * Built on `hashring` 3 (ketama-compatible: md5 points, 4 per virtual node, a binary search per lookup behind a
 * small LRU). Why a library: ketama is the de-facto standard ring (memcached clients, python's hash_ring), and
 * hashring is its widely used JavaScript implementation; why not rendezvous hashing: a lookup would hash the key
 * once per member, where the ring does one hash and a binary search whatever the member count.
 *
 * A ring is immutable: membership changes build a new one (with 100 virtual nodes = 400 points per member this
 * costs well under a millisecond for the member counts a cluster has), so a request never sees a half-built ring.
 *
 * Why route by tenant and not by (tenant, object): an engine loads a tenant's whole graph, so splitting one
 * tenant's questions over several servers would load that graph on each of them (memory × members) and scatter its
 * caches; by tenant, each member holds about 1/N of the tenants (bench/cluster.bench.ts measures the spread).
 */
import HashRing from "hashring";

/** Virtual nodes per member (SpiceDB's balancer also uses 100). */
export const VIRTUAL_NODES = 100;

export class Ring {
  /** The members on the ring, sorted. */
  readonly members: readonly string[];
  readonly #ring: HashRing | undefined;

  constructor(members: Iterable<string>, virtualNodes = VIRTUAL_NODES) {
    this.members = [...new Set(members)].sort();
    // Each member gets exactly `virtualNodes`: hashring uses a member's own count only when it differs from the
    // ring-wide "vnode count"; otherwise it derives floor(weight share × count × members), which rounds 1/3 × 100 × 3
    // down to 99 — so existing members' points would change with the member count and keys would move between them.
    const servers: Record<string, { vnodes: number }> = {};
    for (const m of this.members) servers[m] = { vnodes: virtualNodes };
    this.#ring =
      this.members.length === 0
        ? undefined
        : new HashRing(servers, "md5", { "max cache size": 10_000, "vnode count": virtualNodes + 1 });
  }

  /** The member owning `key`, or undefined on an empty ring. */
  owner(key: string): string | undefined {
    return this.#ring?.get(key);
  }

  /** Whether two rings have the same members (a rebuilt ring places every key the same way). */
  sameMembers(other: Ring): boolean {
    return (
      this.members.length === other.members.length && this.members.every((m, i) => m === other.members[i])
    );
  }
}

/** The share of `keys` whose owner differs between two rings (0..1). */
export function keyMovement(before: Ring, after: Ring, keys: readonly string[]): number {
  if (keys.length === 0) return 0;
  let moved = 0;
  for (const key of keys) if (before.owner(key) !== after.owner(key)) moved++;
  return moved / keys.length;
}

/** Per member, how many of `keys` it owns. */
export function loadOf(ring: Ring, keys: readonly string[]): Map<string, number> {
  const load = new Map<string, number>(ring.members.map((m) => [m, 0]));
  for (const key of keys) {
    const owner = ring.owner(key);
    if (owner !== undefined) load.set(owner, (load.get(owner) ?? 0) + 1);
  }
  return load;
}
