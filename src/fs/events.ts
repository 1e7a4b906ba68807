/**
 * The change stream of a filesystem: every committed file operation and every permission change (share/unshare,
 * and tuple changes made through the engine by anyone else), in one order, each with a token to resume after.
 * It is durable: a token taken before a restart resumes after it, with no gap and no duplicate.
 *
 * Tokens are `<stream id>.<position>`. The stream id is made once per data directory (`events/ID`), positions
 * only grow. The events live in `events/events.log` (one CRC-checked line each, as the journal writes them) and
 * the newest `retention` of them (default 10,000) in memory. What the filesystem derives them from (the metadata
 * journal's commits, the tuple changelog) is its business (see filesystem.ts); this module keeps positions,
 * holes, the file and the watchers.
 *
 * A position can be reserved before its event exists (an operation reserves it in its journaled commit, so the
 * position survives a crash with the commit). Watchers never pass a reserved position that is still empty, so an
 * event cannot be skipped by one that was reserved after it and filled first.
 *
 * Tokens the stream refuses, all NexusError "invalid_token" with `details.reason`: "expired" (older than the
 * retention: the caller drops what it cached and starts again from `fs.token`), "unknown" (another stream, or not
 * a token), "ahead" (a position the stream has not reached).
 */
import { type FileHandle, open, readFile, rename } from "node:fs/promises";
import { join } from "node:path";
import { NexusError } from "../util/errors.js";
import type {
  EventFilter,
  EventSource,
  FsEvent,
  FsWatchRequest,
  NewFsEvent,
  StoredEvent,
} from "./event-types.js";
import { formatLine, parseLine, writeSynced } from "./journal.js";

export type {
  EventFilter,
  EventSource,
  FsEvent,
  FsEventKind,
  FsWatchRequest,
  NewFsEvent,
  StoredEvent,
} from "./event-types.js";

interface Header {
  readonly h: {
    readonly first: number;
    readonly last: number;
    readonly c: number;
    readonly s?: string;
    readonly seq: number;
  };
}

/** The tuple changelog cursor, and the id of the tuple store it counts revisions of. */
interface CursorRecord {
  readonly c: number;
  readonly s?: string;
}

export interface EventLogOptions {
  /** Events kept (in memory and on disk); an older token is "expired". Default 10,000. */
  readonly retention?: number;
  /** Sync the file when asked (durable pushes, flush). Default true. */
  readonly fsync?: boolean;
}

export class FsEventLog implements AsyncDisposable {
  readonly id: string;
  readonly retention: number;
  /** The events found on disk at open, oldest first (for the filesystem to see what is already reported). */
  readonly loaded: readonly StoredEvent[];
  readonly #file: string;
  readonly #fsync: boolean;
  #fh: FileHandle;
  /** Position of #events[0]. */
  #first: number;
  /**
   * Slots from #first on: an event; undefined for a position reserved and not yet filled; null for a position
   * that will never have an event (its operation failed, or a crash cut it before anyone could see it).
   */
  #events: (FsEvent | null | undefined)[] = [];
  /** Sources of the events in memory (same slots), for compaction. */
  #sources: (EventSource | undefined)[] = [];
  /** Events before this position are all filled (what watchers may deliver). */
  #visibleEnd: number;
  #wake: (() => void)[] = [];
  /** Highest journal sequence reported. */
  #lastSeq: number;
  /** The tuple changelog cursor: every change at or below it is reported or known to be the filesystem's own. */
  #cursor: number;
  #cursorStore: string | undefined;
  #cursorWritten: number;
  /** Journal sequence numbers reported: those of the events on disk, and all up to `#compactedSeq`. */
  readonly #loadedSeqs: Set<number>;
  readonly #compactedSeq: number;
  #linesInFile: number;
  #writes: Promise<void> = Promise.resolve();
  #closed = false;

  private constructor(
    dir: string,
    id: string,
    fh: FileHandle,
    state: {
      first: number;
      seq: number;
      headerSeq: number;
      c: number;
      s: string | undefined;
      events: StoredEvent[];
      lines: number;
    },
    options: EventLogOptions,
  ) {
    this.id = id;
    this.retention = options.retention ?? 10_000;
    this.#fsync = options.fsync ?? true;
    this.#file = join(dir, "events.log");
    this.#fh = fh;
    this.loaded = state.events;
    this.#lastSeq = state.seq;
    this.#cursor = state.c;
    this.#cursorStore = state.s;
    this.#cursorWritten = state.c;
    this.#compactedSeq = state.headerSeq;
    this.#loadedSeqs = new Set(state.events.flatMap((r) => (r.seq !== undefined ? [r.seq] : [])));
    this.#linesInFile = state.lines;
    const kept = state.events.filter((r) => r.p >= state.first).slice(-this.retention);
    this.#first = kept[0]?.p ?? state.first;
    for (const r of kept) this.#place(r);
    this.#visibleEnd = this.#first;
    this.#advance();
  }

  /** Opens (creating) the stream kept in `dir`; a torn last line is cut. */
  static async open(dir: string, options: EventLogOptions = {}): Promise<FsEventLog> {
    const retention = options.retention ?? 10_000;
    if (!Number.isSafeInteger(retention) || retention < 1) {
      throw new NexusError("invalid_argument", `the event retention is an integer ≥ 1, got ${retention}`);
    }
    const { mkdir } = await import("node:fs/promises");
    await mkdir(dir, { recursive: true });
    let id = (await readFile(join(dir, "ID"), "utf8").catch(() => "")).trim();
    if (!/^[a-z0-9]{8,}$/.test(id)) {
      id = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;
      await writeSynced(join(dir, "ID"), `${id}\n`);
    }
    const file = join(dir, "events.log");
    const text = await readFile(file, "utf8").catch((e: NodeJS.ErrnoException) => {
      if (e.code === "ENOENT") return "";
      throw e;
    });
    let first = 1;
    let seq = 0;
    let headerSeq = 0;
    let c = 0;
    let s: string | undefined;
    let lines = 0;
    const events: StoredEvent[] = [];
    let good = 0;
    while (good < text.length) {
      const end = text.indexOf("\n", good);
      if (end < 0) break;
      const record = parseLine(text.slice(good, end)) as StoredEvent | Header | CursorRecord | undefined;
      if (record === undefined) break;
      good = end + 1;
      lines++;
      if ("h" in record) {
        first = record.h.first;
        seq = Math.max(seq, record.h.seq);
        headerSeq = record.h.seq;
        c = record.h.c;
        s = record.h.s;
      } else if ("e" in record) {
        events.push(record);
        if (record.seq !== undefined) seq = Math.max(seq, record.seq);
      } else if (typeof record.c === "number") {
        // The latest cursor wins: a new tuple store starts its revisions again.
        c = record.c;
        s = record.s;
      }
    }
    const fh = await open(file, "a+");
    const goodBytes = Buffer.byteLength(text.slice(0, good));
    if (goodBytes < Buffer.byteLength(text)) {
      await fh.truncate(goodBytes);
      await fh.sync();
    }
    // A restart may append derived events before later ones already here: order by position.
    events.sort((a, b) => a.p - b.p);
    if (events.length > 0) first = Math.min(first, events[0]!.p);
    return new FsEventLog(dir, id, fh, { first, seq, headerSeq, c, s, events, lines }, options);
  }

  /** The token of the newest event watchers can have (events after it are still to come). */
  get token(): string {
    return `${this.id}.${this.#visibleEnd - 1}`;
  }

  /** The highest journal sequence number this stream reports. */
  get lastSeq(): number {
    return this.#lastSeq;
  }

  /** The tuple changelog revision up to which every change has been reported or skipped as the filesystem's own. */
  get cursor(): number {
    return this.#cursor;
  }

  /** The tuple store whose revisions the cursor counts (undefined for a new stream). */
  get cursorStore(): string | undefined {
    return this.#cursorStore;
  }

  /** Whether the commit with this journal sequence number is already reported. */
  reported(seq: number): boolean {
    return seq <= this.#compactedSeq || this.#loadedSeqs.has(seq);
  }

  /** The next position, reserved: fill it with fill() (watchers wait at it until then). */
  reserve(): number {
    const p = this.#first + this.#events.length;
    this.#events.push(undefined);
    this.#sources.push(undefined);
    return p;
  }

  /** Fills a reserved position (or appends, without `p`); the line is written in the background (see flush). */
  push(event: NewFsEvent, source: EventSource = {}, p: number = this.reserve()): FsEvent {
    this.#assertOpen();
    const full = this.#fill(p, event, source);
    this.#append([{ p, e: event, ...source }]);
    return full;
  }

  /**
   * Appends events and makes them durable (synced) before any watcher sees them, then advances the cursor.
   * For events whose source alone cannot bring them back after a machine crash.
   */
  async pushDurable(items: { event: NewFsEvent; source: EventSource }[], cursor?: number): Promise<void> {
    this.#assertOpen();
    const slots = items.map(() => this.reserve());
    if (cursor !== undefined) this.#cursor = Math.max(this.#cursor, cursor);
    const records: (StoredEvent | CursorRecord)[] = items.map((it, i) => ({
      p: slots[i]!,
      e: it.event,
      ...it.source,
    }));
    if (cursor !== undefined) {
      records.push(this.#cursorRecord());
      this.#cursorWritten = this.#cursor;
    }
    this.#append(records);
    await this.flush(true);
    for (const [i, it] of items.entries()) this.#fill(slots[i]!, it.event, it.source);
  }

  /** Restores, at open, an event whose commit the journal has and this file lacks (a crash cut its line). */
  restore(p: number, event: NewFsEvent, source: EventSource): void {
    if (p < this.#first) return; // older than the retention: nobody can ask for it
    while (this.#first + this.#events.length <= p) this.reserve();
    this.push(event, source, p);
  }

  /** Gives up a reserved position: watchers pass it by. */
  skip(p: number): void {
    const i = p - this.#first;
    if (i < 0 || i >= this.#events.length || this.#events[i] !== undefined) return;
    this.#events[i] = null;
    this.#advance();
  }

  /** At open, after restore(): positions reserved before a crash and never filled are given up. */
  sealHoles(): void {
    for (let i = 0; i < this.#events.length; i++) if (this.#events[i] === undefined) this.#events[i] = null;
    this.#advance();
  }

  /** Moves the changelog cursor (written with the next line, or by flush). */
  setCursor(cursor: number): void {
    this.#cursor = Math.max(this.#cursor, cursor);
  }

  /** Starts counting another tuple store's revisions, from `cursor` (written at once, unsynced). */
  resetCursor(cursor: number, store: string): void {
    this.#cursor = cursor;
    this.#cursorStore = store;
    this.#cursorWritten = cursor;
    this.#append([{ c: cursor, s: store }]);
  }

  /** Waits for background writes; writes the cursor if it moved; syncs when `sync` (and fsync is on). */
  async flush(sync = false): Promise<void> {
    if (this.#cursor !== this.#cursorWritten) {
      this.#cursorWritten = this.#cursor;
      this.#append([this.#cursorRecord()]);
    }
    await this.#writes;
    if (sync && this.#fsync) await this.#fh.sync();
  }

  /** The events after `request.after`; a token it refuses is refused here, before any event is awaited. */
  watch(
    request: FsWatchRequest,
    closing: AbortSignal,
    filter?: EventFilter,
  ): AsyncGenerator<FsEvent, void, undefined> {
    const next = request.after === undefined ? this.#visibleEnd : this.#positionAfter(request.after);
    if (next < this.#first) throw this.#expired(request.after);
    return this.#from(next, request.signal, closing, filter);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    await this.flush(true).catch(() => {});
    this.#closed = true;
    await this.#fh.close();
    for (const w of this.#wake.splice(0)) w();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  // ---- internals -------------------------------------------------------------------------------------------------

  #place(r: StoredEvent): void {
    const i = r.p - this.#first;
    while (this.#events.length <= i) {
      this.#events.push(undefined);
      this.#sources.push(undefined);
    }
    this.#events[i] = { token: `${this.id}.${r.p}`, ...r.e };
    const { seq, rev, tr } = r;
    this.#sources[i] = {
      ...(seq !== undefined ? { seq } : {}),
      ...(rev !== undefined ? { rev } : {}),
      ...(tr !== undefined ? { tr } : {}),
    };
  }

  #fill(p: number, event: NewFsEvent, source: EventSource): FsEvent {
    const i = p - this.#first;
    if (i < 0 || i >= this.#events.length || this.#events[i] !== undefined) {
      throw new NexusError("internal", `event position ${p} was not reserved`, { position: p });
    }
    const full: FsEvent = { token: `${this.id}.${p}`, ...event };
    this.#events[i] = full;
    this.#sources[i] = source;
    if (source.seq !== undefined) this.#lastSeq = Math.max(this.#lastSeq, source.seq);
    this.#advance();
    return full;
  }

  /** Moves the visible end past every filled (or given up) slot, drops what the retention does not keep, wakes watchers. */
  #advance(): void {
    let end = this.#visibleEnd;
    while (end - this.#first < this.#events.length && this.#events[end - this.#first] !== undefined) end++;
    if (end !== this.#visibleEnd) {
      this.#visibleEnd = end;
      // Drop the oldest beyond the retention (only delivered-ready ones: a reserved slot stays).
      const excess = this.#visibleEnd - this.#first - this.retention;
      if (excess > 0) {
        this.#events.splice(0, excess);
        this.#sources.splice(0, excess);
        this.#first += excess;
      }
      const wake = this.#wake;
      this.#wake = [];
      for (const w of wake) w();
    }
  }

  #append(records: (StoredEvent | CursorRecord)[]): void {
    const text = records.map(formatLine).join("");
    this.#linesInFile += records.length;
    this.#writes = this.#writes.then(async () => {
      if (this.#closed) return;
      await this.#fh.write(text);
      if (this.#linesInFile > 2 * this.retention + 1) await this.#compact();
    });
    // A failed write shows up at the next flush (it is awaited there); it must not stop the writes after it.
    this.#writes.catch(() => {});
  }

  /** Rewrites the file with what the retention keeps (a header, then the events still held). */
  async #compact(): Promise<void> {
    const lines: string[] = [];
    const visible = this.#visibleEnd;
    lines.push(
      formatLine({
        h: {
          first: this.#first,
          last: visible - 1,
          c: this.#cursor,
          ...(this.#cursorStore !== undefined ? { s: this.#cursorStore } : {}),
          seq: this.#lastSeq,
        },
      } satisfies Header),
    );
    for (let i = 0; i < this.#events.length; i++) {
      const e = this.#events[i];
      if (!e) continue;
      const { token: _token, ...event } = e;
      lines.push(formatLine({ p: this.#first + i, e: event, ...this.#sources[i] } satisfies StoredEvent));
    }
    lines.push(formatLine(this.#cursorRecord()));
    const tmp = `${this.#file}.compact`;
    await writeSynced(tmp, lines.join(""));
    await this.#fh.close();
    await rename(tmp, this.#file);
    this.#fh = await open(this.#file, "a+");
    this.#linesInFile = lines.length;
    this.#cursorWritten = this.#cursor;
  }

  async *#from(
    start: number,
    signal: AbortSignal | undefined,
    closing: AbortSignal,
    filter: EventFilter | undefined,
  ): AsyncGenerator<FsEvent, void, undefined> {
    let next = start;
    /** The newest event hidden from this caller since the last one it was given. */
    let hidden: string | undefined;
    while (!closing.aborted && !signal?.aborted && !this.#closed) {
      // A reader slower than the retention loses its place.
      if (next < this.#first) throw this.#expired(`${this.id}.${next - 1}`);
      if (next < this.#visibleEnd) {
        const event = this.#events[next - this.#first];
        next++;
        if (!event) continue;
        if (filter === undefined) {
          yield event;
          continue;
        }
        const shown = await filter(event);
        if (shown === undefined) {
          hidden = event.token;
        } else {
          hidden = undefined;
          yield shown;
        }
        continue;
      }
      if (hidden !== undefined) {
        // Caught up: say how far, so a caller waiting for a token is not left waiting on hidden events.
        yield { token: hidden, kind: "position", tenant: "" };
        hidden = undefined;
        continue;
      }
      await new Promise<void>((resolve) => {
        const done = () => {
          closing.removeEventListener("abort", done);
          signal?.removeEventListener("abort", done);
          resolve();
        };
        this.#wake.push(done);
        closing.addEventListener("abort", done, { once: true });
        signal?.addEventListener("abort", done, { once: true });
      });
    }
  }

  #expired(token: string | undefined): NexusError {
    return new NexusError(
      "invalid_token",
      `the change stream keeps the last ${this.retention} events and no longer holds those after ${token}; start again from fs.token`,
      { token, reason: "expired", oldest: `${this.id}.${this.#first - 1}`, retention: this.retention },
    );
  }

  #positionAfter(token: string): number {
    const dot = typeof token === "string" ? token.lastIndexOf(".") : -1;
    const id = dot > 0 ? token.slice(0, dot) : undefined;
    const position = dot > 0 ? Number(token.slice(dot + 1)) : Number.NaN;
    if (id !== this.id || !Number.isSafeInteger(position) || position < 0) {
      throw new NexusError(
        "invalid_token",
        `${JSON.stringify(token)} is not a token of this filesystem's change stream`,
        { token, reason: "unknown" },
      );
    }
    if (position >= this.#visibleEnd) {
      throw new NexusError("invalid_token", `${token} is ahead of this change stream (at ${this.token})`, {
        token,
        reason: "ahead",
      });
    }
    return position + 1;
  }

  #cursorRecord(): CursorRecord {
    return { c: this.#cursor, ...(this.#cursorStore !== undefined ? { s: this.#cursorStore } : {}) };
  }

  #assertOpen(): void {
    if (this.#closed) throw new NexusError("closed", "the change stream is closed");
  }
}
