/**
 * The journaled mutations of NexusFS (the crash-safety rules are in filesystem.ts's module comment): run one at
 * a time (exclusive), each journals `begin` naming its effects outside the journal, stores its bytes, writes its
 * tuples, journals `commit`, applies the commit to its tree and the change stream, does what comes after the
 * commit (tuples deleted, contents released) and journals `end`. Every `checkpointEvery` records the trees are
 * checkpointed and the journal starts again. A step failing before the commit is undone at once (tuples reversed,
 * bytes released, `end` journaled); a failure only replay can finish (a journal append, the undo, a step after
 * the commit) stops mutations until the filesystem is reopened, since the next `begin` would hide it from replay.
 *
 * It also holds the token of the filesystem's last tuple write: the permission checks and tuple reads that follow
 * are at least that fresh.
 */
import { createReadStream } from "node:fs";
import { join } from "node:path";
import type { TieredStore } from "../blobs/tiered/store.js";
import type { Engine } from "../engine/engine.js";
import type { TupleKey } from "../tuples/tuple.js";
import { isNexusError, NexusError } from "../util/errors.js";
import type { FsEventLog } from "./events.js";
import type { Journal } from "./journal.js";
import {
  applyCommit,
  type BeginRecord,
  type Checkpoint,
  type CommitOp,
  type CommitRecord,
  type EndRecord,
  eventOf,
} from "./journal-records.js";
import { objectOf, parentOf } from "./paths.js";
import type { PermissionFollower } from "./permission-follower.js";
import type { Staged } from "./staging.js";
import type { TenantTree } from "./tree.js";
import { changeOf, identityOf, revisionOf, sameTuple } from "./tuple-keys.js";
import type { Caller, MutationStep } from "./types.js";

export interface MutationLogParts {
  readonly engine: Engine;
  readonly store: TieredStore;
  readonly journal: Journal;
  readonly trees: Map<string, TenantTree>;
  /** A tenant's tree, created (and kept) when missing. */
  readonly tree: (tenant: string) => TenantTree;
  /** Store references held per content hash (one per version of any file that names it). */
  readonly held: Map<string, number>;
  /** The last journal sequence number replayed at open. */
  readonly seq: number;
  readonly events: FsEventLog;
  readonly follower: PermissionFollower;
  /** Sync the journal before an operation is acknowledged. */
  readonly sync: boolean;
  readonly maxVersions: number;
  readonly checkpointEvery: number;
  readonly onStep: ((step: MutationStep, op: string) => void) | undefined;
  /** Whether the filesystem has closed (no new mutation starts then). */
  readonly closed: () => boolean;
}

/** What a journaled mutation does besides its commit: bytes to store, tuples before it, tuples to delete after. */
interface MutationEffects {
  readonly staged?: Staged | undefined;
  readonly before?: { wrote: TupleKey[]; deleted: TupleKey[] };
  readonly deleteAfter?: TupleKey[];
}

export class MutationLog {
  readonly #engine: Engine;
  readonly #store: TieredStore;
  readonly #journal: Journal;
  readonly #trees: Map<string, TenantTree>;
  readonly #tree: (tenant: string) => TenantTree;
  readonly #held: Map<string, number>;
  readonly #events: FsEventLog;
  readonly #follower: PermissionFollower;
  readonly #sync: boolean;
  readonly #maxVersions: number;
  readonly #checkpointEvery: number;
  readonly #onStep: ((step: MutationStep, op: string) => void) | undefined;
  readonly #closed: () => boolean;
  #seq: number;
  #token: string | undefined;
  #queue: Promise<unknown> = Promise.resolve();
  /** Odd while a run() is changing tuples or trees, bumped at its start and end (see `changes`). */
  #changes = 0;
  #running: Promise<void> = Promise.resolve();
  /**
   * Set when a mutation failed in a way only recovery at open can finish (its journal append failed, its undo
   * failed, or a step after its commit did): later mutations are refused, so no later `begin` hides it from
   * replay, and close() leaves the journal for replay instead of checkpointing over it.
   */
  #broken: NexusError | undefined;

  constructor(parts: MutationLogParts) {
    this.#engine = parts.engine;
    this.#store = parts.store;
    this.#journal = parts.journal;
    this.#trees = parts.trees;
    this.#tree = parts.tree;
    this.#held = parts.held;
    this.#seq = parts.seq;
    this.#events = parts.events;
    this.#follower = parts.follower;
    this.#sync = parts.sync;
    this.#maxVersions = parts.maxVersions;
    this.#checkpointEvery = parts.checkpointEvery;
    this.#onStep = parts.onStep;
    this.#closed = parts.closed;
  }

  /** The token of the filesystem's last tuple write (undefined before its first). */
  get token(): string | undefined {
    return this.#token;
  }

  /**
   * A count that moves when a run() starts and when it ends, odd in between (its tuples and its tree do not
   * agree then). A read that saw the same even count before and after its checks saw no mutation half done.
   */
  get changes(): number {
    return this.#changes;
  }

  /** Settles when the run() in progress (if any) has ended. */
  settled(): Promise<void> {
    return this.#running;
  }

  /** Why mutations are refused until the filesystem is reopened (undefined when they are not). */
  get broken(): NexusError | undefined {
    return this.#broken;
  }

  /** Settles once the mutations queued so far have run. */
  idle(): Promise<void> {
    return this.#queue.then(
      () => {},
      () => {},
    );
  }

  exclusive<T>(work: () => Promise<T>): Promise<T> {
    if (this.#closed()) return Promise.reject(new NexusError("closed", "the filesystem is closed"));
    const run = this.#queue.then(work, work);
    this.#queue = run.catch(() => {});
    return run;
  }

  /** A new entry: its creator becomes its owner, and a parent tuple links it to its directory. */
  async create(c: Required<Caller>, tenant: string, commit: CommitOp & { path: string }, staged: Staged[]) {
    const object = objectOf(commit.path);
    const owner: TupleKey =
      c.tenant === tenant
        ? { user: c.user, relation: "direct_owner", object, tenant }
        : { user: c.user, relation: "shared-owner", object, tenant, subjectTenant: c.tenant };
    const parent: TupleKey = { user: objectOf(parentOf(commit.path)!), relation: "parent", object, tenant };
    const existing = await this.tuplesOf(tenant, commit.path);
    const wrote = [owner, parent].filter((t) => !existing.some((e) => sameTuple(e, t)));
    await this.run(tenant, commit, { staged: staged[0], before: { wrote, deleted: [] } });
  }

  /**
   * One journaled mutation: begin (when it has effects outside the journal), bytes, tuples, commit, apply, the
   * effects after the commit, end.
   */
  async run(tenant: string, commit: CommitOp, effects: MutationEffects): Promise<void> {
    if (this.#broken !== undefined) throw this.#broken;
    let ended!: () => void;
    this.#running = new Promise((resolve) => {
      ended = resolve;
    });
    this.#changes++;
    try {
      await this.#run(tenant, commit, effects);
    } finally {
      this.#changes++;
      ended();
    }
  }

  async #run(tenant: string, commit: CommitOp, effects: MutationEffects): Promise<void> {
    const seq = ++this.#seq;
    const wrote = effects.before?.wrote ?? [];
    const deleted = effects.before?.deleted ?? [];
    const staged = effects.staged;
    const storing = staged !== undefined && !this.#held.has(staged.hash);
    // What to undo when a step before the commit fails.
    let begun = false;
    const stored: string[] = [];
    let tuplesTried = false;
    let rev: number | undefined;
    try {
      if (storing || wrote.length > 0 || deleted.length > 0) {
        const begin: BeginRecord = {
          t: "begin",
          seq,
          tenant,
          keys: storing ? [staged.hash] : [],
          wrote,
          deleted,
        };
        await this.#journaled(() => this.#journal.append(begin, this.#sync));
        begun = true;
        this.#onStep?.("begun", commit.op);
      }
      if (storing) {
        const put =
          staged.bytes !== undefined
            ? await this.#store.put(staged.bytes)
            : await this.#store.putStream(createReadStream(staged.file!) as AsyncIterable<Uint8Array>);
        stored.push(put.key);
        if (put.key !== staged.hash) {
          throw new NexusError(
            "internal",
            `the store keyed ${commit.op} content ${put.key}, expected ${staged.hash}`,
          );
        }
        this.#onStep?.("stored", commit.op);
      }
      if (wrote.length > 0 || deleted.length > 0) {
        tuplesTried = true;
        rev = revisionOf(
          await this.tupleWrite(
            { writes: wrote, deletes: deleted, onDuplicate: "ignore", onMissing: "ignore" },
            true,
          ),
        );
        this.#onStep?.("tuples", commit.op);
      }
    } catch (e) {
      if (this.#broken === undefined) {
        // An engine that refused the write (a tuple it finds invalid) applied none of it.
        const reverse = tuplesTried && !(rev === undefined && refused(e));
        // A put that threw may still have stored the bytes (a tier that took them before its own bookkeeping
        // failed): its content is released as replay would release it, when the store holds it and no record does.
        const unsure = storing && stored.length === 0 ? [staged.hash] : [];
        await this.#undo(seq, begun, stored, unsure, reverse ? { wrote, deleted } : undefined, e);
      }
      throw e;
    }
    // The event's position is reserved now and written in the commit: a crash after the commit brings the event
    // back under the same position at open.
    const p = this.#events.reserve();
    const record: CommitRecord = {
      ...commit,
      t: "commit",
      seq,
      tenant,
      deleteAfter: effects.deleteAfter ?? [],
      p,
      ...(rev !== undefined ? { rev } : {}),
    };
    try {
      // Whether a failed append left the commit on disk is for replay to tell.
      await this.#journaled(() => this.#journal.append(record, this.#sync));
    } catch (e) {
      this.#events.skip(p);
      throw e;
    }
    const released = this.#apply(record);
    this.#events.push(eventOf(record), { seq, ...(rev !== undefined ? { rev } : {}) }, p);
    try {
      this.#onStep?.("committed", commit.op);
      let revAfter: number | undefined;
      if (record.deleteAfter.length > 0) {
        revAfter = revisionOf(
          await this.tupleWrite({ deletes: record.deleteAfter, onMissing: "ignore" }, true),
        );
      }
      await this.#release(released);
      this.#onStep?.("after", commit.op);
      // Only effects after the commit need an end mark; a commit without one is rolled forward, which for an
      // operation with none changes nothing.
      if (record.deleteAfter.length > 0 || released.length > 0) {
        const end: EndRecord = { t: "end", seq, ...(revAfter !== undefined ? { rev: revAfter } : {}) };
        await this.#journal.append(end, false);
      }
    } catch (e) {
      // Committed: only replay at open finishes it (rolled forward).
      this.#broken ??= brokenBy(e);
      throw e;
    }
    if (this.#journal.records >= this.#checkpointEvery) await this.checkpoint();
  }

  /** A journal append; a failed one may or may not be on disk, so only replay at open can go on from it. */
  async #journaled(append: () => Promise<unknown>): Promise<void> {
    try {
      await append();
    } catch (e) {
      this.#broken ??= brokenBy(e);
      throw e;
    }
  }

  /**
   * Undoes a mutation that failed before its commit, as a rollback at open would: its tuple changes reversed
   * (those it named, which existed before it or not at all), its bytes released, and an `end` journaled so
   * replay does not roll it back again. When the undo fails too, mutations stop until replay at open does it.
   */
  async #undo(
    seq: number,
    begun: boolean,
    stored: readonly string[],
    maybeStored: readonly string[],
    tuples: { wrote: TupleKey[]; deleted: TupleKey[] } | undefined,
    cause: unknown,
  ): Promise<void> {
    try {
      let rev: number | undefined;
      if (tuples !== undefined) {
        rev = revisionOf(
          await this.tupleWrite(
            { writes: tuples.deleted, deletes: tuples.wrote, onDuplicate: "ignore", onMissing: "ignore" },
            true,
          ),
        );
      }
      await this.#release(stored);
      for (const hash of maybeStored) {
        if (!this.#held.has(hash) && (await this.#store.has(hash))) await this.#store.delete(hash);
      }
      if (begun) {
        const end: EndRecord = { t: "end", seq, ...(rev !== undefined ? { rev } : {}) };
        await this.#journal.append(end, this.#sync);
      }
    } catch {
      this.#broken ??= brokenBy(cause);
    }
  }

  /** Applies a committed record to its tree and the held counts; returns the hashes no longer held by it. */
  #apply(record: CommitRecord): string[] {
    return applyCommit(this.#tree(record.tenant), record, this.#held, this.#maxVersions);
  }

  async #release(hashes: readonly string[]): Promise<void> {
    for (const hash of new Set(hashes)) {
      if (!this.#held.has(hash)) await this.#store.delete(hash);
    }
  }

  /**
   * A permission change the filesystem makes itself (an owner of a tenant's root, a share, an unshare): the tuple
   * write, then one durable `permission` event on `path` per tuple written or deleted. Returns the write's token.
   */
  async permissionChange(
    tenant: string,
    path: string,
    request: { writes?: TupleKey[]; deletes?: TupleKey[]; onDuplicate?: "ignore" },
  ): Promise<string> {
    if (this.#broken !== undefined) throw this.#broken;
    const token = await this.tupleWrite(request, true);
    const changes = [
      ...(request.writes ?? []).map((t) => changeOf("write", t)),
      ...(request.deletes ?? []).map((t) => changeOf("delete", t)),
    ];
    await this.#events.pushDurable(
      changes.map((change) => ({
        event: { kind: "permission", tenant, path, change },
        source: { rev: revisionOf(token) },
      })),
    );
    return token;
  }

  async tupleWrite(
    request: {
      writes?: TupleKey[];
      deletes?: TupleKey[];
      onDuplicate?: "ignore";
      onMissing?: "ignore";
    },
    own = false,
  ): Promise<string> {
    const writing = this.#engine.write({
      ...(request.writes?.length ? { writes: request.writes } : {}),
      ...(request.deletes?.length ? { deletes: request.deletes.map(identityOf) } : {}),
      ...(request.onDuplicate ? { onDuplicate: request.onDuplicate } : {}),
      ...(request.onMissing ? { onMissing: request.onMissing } : {}),
    });
    // The follower may read this write's changes before the await below returns: it waits for this first.
    const noted = own ? this.#follower.noteOwnWrite(writing) : undefined;
    const { token } = await writing;
    if (own) await noted;
    this.#token = token;
    return token;
  }

  /** Every tuple whose object is the path. */
  async tuplesOf(tenant: string, path: string): Promise<TupleKey[]> {
    const consistency = this.#token !== undefined ? { atLeastAsFresh: this.#token } : undefined;
    return this.#engine.read({ tenant, object: objectOf(path), ...(consistency ? { consistency } : {}) });
  }

  async checkpoint(): Promise<void> {
    // The journal's commits leave with this checkpoint: their events (and the cursor past their own tuple
    // changes) must be on disk first.
    await this.#follower.caughtUp();
    await this.#events.flush(true);
    const names = [...this.#trees.keys()];
    const tenants = names.map((name, i) => ({ name, table: "", tree: this.#trees.get(name)!.snapshot(), i }));
    await this.#journal.checkpoint(
      {
        seq: this.#seq,
        tenants: tenants.map(({ name, tree }, i) => ({
          name,
          table: `meta-${this.#journal.generation + 1}-${i}.nxm`,
          tree,
        })),
      } satisfies Checkpoint,
      async (generation) => {
        for (const [i, name] of names.entries()) {
          await this.#trees.get(name)!.table.save(join(this.#journal.dir, `meta-${generation}-${i}.nxm`));
        }
      },
    );
  }
}

function brokenBy(cause: unknown): NexusError {
  return new NexusError(
    "unavailable",
    "a mutation failed half done; reopen the filesystem to recover it (no mutation runs until then)",
    {},
    { cause },
  );
}

/** Whether an engine error is a refusal of the request itself (nothing of it was applied). */
function refused(e: unknown): boolean {
  return (
    isNexusError(e) &&
    (e.code.startsWith("invalid_") || e.code === "type_not_found" || e.code === "relation_not_found")
  );
}
