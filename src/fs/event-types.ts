/**
 * The shapes of the filesystem's change stream: an event as watchers see it (FsEvent), a watch request, the
 * per-caller filter, and how an event is stored with where it came from (events.ts keeps the stream).
 */

/**
 * `position` appears only in a stream filtered for one caller: events up to its token happened that the caller
 * may not see (it carries no path and no tenant; a client just moves its token).
 */
export type FsEventKind = "created" | "written" | "removed" | "renamed" | "permission" | "position";

export interface FsEvent {
  readonly token: string;
  readonly kind: FsEventKind;
  readonly tenant: string;
  /**
   * The entry (the new path of a rename). Absent on a permission event that may concern any path: a change on a
   * non-file object (a group), or changes the stream could not follow; a cache drops everything on it.
   */
  readonly path?: string;
  /** The old path of a rename. */
  readonly from?: string;
  readonly isDirectory?: boolean;
  /** The new content's hash (created/written files). */
  readonly hash?: string;
  /** The subjects whose direct grants went with a removed entry (who could read it through them). */
  readonly grantees?: readonly string[];
  /** The tuple change behind a permission event. */
  readonly change?: {
    readonly op: "write" | "delete";
    readonly user: string;
    readonly relation: string;
    readonly object: string;
    readonly subjectTenant?: string;
  };
}

export type NewFsEvent = Omit<FsEvent, "token">;

export interface FsWatchRequest {
  /** Resume after this token (default: from now on). */
  readonly after?: string;
  readonly signal?: AbortSignal;
}

/** What one caller may see of an event: the event (or a redacted form of it), or undefined to hide it. */
export type EventFilter = (event: FsEvent) => Promise<FsEvent | undefined>;

/** Where an event came from, kept with it so a restart can tell what is already in the stream. */
export interface EventSource {
  /** The journal sequence number of the commit it reports. */
  readonly seq?: number;
  /** The revision of the tuple write the filesystem made for it (its own change: not reported again). */
  readonly rev?: number;
  /** The revision of the tuple change it reports (a change made by someone else). */
  readonly tr?: number;
}

/** One stored event: its position, the event, where it came from. */
export interface StoredEvent extends EventSource {
  readonly p: number;
  readonly e: NewFsEvent;
}
