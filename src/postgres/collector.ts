/**
 * Garbage collection: what the store keeps is bounded, as the memory store's is.
 * - Changelog: at most `changelogMaxEntries` changes (whole revisions), none older than `changelogMaxAgeMs`; the
 *   latest revision's changes are always kept. `retention.changelog_floor` moves up; changes at or below it are
 *   deleted, and changesAfter below it is "invalid_token".
 * - Tuple versions: a version deleted at d is dropped once d ≤ the horizon, the revision current
 *   `snapshotRetentionMs` ago (lowered to this process's oldest open snapshot). `retention.version_horizon` moves
 *   up in the same transaction, so a read at an older revision is refused rather than answered without them.
 * - Commit times: kept for revisions above the changelog floor and within the longer of the two windows (plus the
 *   one just before it), which is what revisionAt can be asked.
 *
 * One collector at a time across every process over the schema: a collection runs under a transaction-level
 * advisory lock taken with pg_try_advisory_xact_lock; a process that does not get it skips (someone is
 * collecting). It is run by writes (store.ts decides when) and by `collectGarbage()`.
 */
import type pg from "pg";
import type { Revision } from "../tuples/types.js";
import type { Database } from "./database.js";

export interface RetentionSettings {
  readonly snapshotRetentionMs: number;
  readonly changelogMaxEntries: number;
  readonly changelogMaxAgeMs: number;
}

export interface CollectionReport {
  /** false when another process held the collector's lock (nothing was done). */
  readonly ran: boolean;
  readonly changelogFloor: Revision;
  readonly versionHorizon: Revision;
  readonly changesDeleted: number;
  readonly versionsDeleted: number;
  readonly commitsDeleted: number;
}

export async function collect(
  db: Database,
  settings: RetentionSettings,
  now: number,
  /** The oldest revision a snapshot of this process holds open, if any. */
  oldestLease: Revision | undefined,
): Promise<CollectionReport> {
  const s = db.schema;
  return db.transaction("collecting garbage", async (client) => {
    await client.query("BEGIN");
    const lock = await client.query<{ locked: boolean }>(
      "SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0)) AS locked",
      [`nexus-fast collect ${s}`],
    );
    const [meta, retention] = await Promise.all([
      one(client, `SELECT revision, changes_total FROM ${s}.store_meta`),
      one(client, `SELECT changelog_floor, changelog_floor_total, version_horizon FROM ${s}.retention`),
    ]);
    const current = Number(meta.revision);
    let floor = Number(retention.changelog_floor);
    let horizon = Number(retention.version_horizon);
    if (lock.rows[0]?.locked !== true) {
      await client.query("ROLLBACK");
      return report(false, floor, horizon, 0, 0, 0);
    }

    // Changelog: the floor that leaves at most maxEntries changes, and none older than maxAge.
    const total = Number(meta.changes_total);
    let floorTotal = Number(retention.changelog_floor_total);
    let changesDeleted = 0;
    if (current > 0) {
      const byAge = await revisionAtOrBefore(client, s, now - settings.changelogMaxAgeMs);
      let byCount = 0;
      if (total - floorTotal > settings.changelogMaxEntries) {
        const r = await client.query<{ revision: string }>(
          `SELECT revision FROM ${s}.commits WHERE changes_total >= $1 ORDER BY changes_total LIMIT 1`,
          [total - settings.changelogMaxEntries],
        );
        byCount = Number(r.rows[0]?.revision ?? 0);
      }
      const target = Math.min(Math.max(byAge, byCount), current - 1);
      if (target > floor) {
        const deleted = await client.query(`DELETE FROM ${s}.changelog WHERE revision <= $1`, [target]);
        changesDeleted = deleted.rowCount ?? 0;
        const at = await client.query<{ changes_total: string }>(
          `SELECT changes_total FROM ${s}.commits WHERE revision = $1`,
          [target],
        );
        floor = target;
        floorTotal =
          at.rows[0] === undefined ? floorTotal + changesDeleted : Number(at.rows[0].changes_total);
      }
    }

    // Versions: drop those deleted at or before the horizon.
    let versionsDeleted = 0;
    let target = Math.min(await revisionAtOrBefore(client, s, now - settings.snapshotRetentionMs), current);
    if (oldestLease !== undefined) target = Math.min(target, oldestLease);
    if (target > horizon) {
      const deleted = await client.query(
        `DELETE FROM ${s}.tuples WHERE deleted_rev IS NOT NULL AND deleted_rev <= $1`,
        [target],
      );
      versionsDeleted = deleted.rowCount ?? 0;
      horizon = target;
    }

    // Commit times: keep those above the floor, and from the last one before the window on.
    const windowStart = now - Math.max(settings.snapshotRetentionMs, settings.changelogMaxAgeMs);
    const keepFrom = Math.min(floor + 1, await revisionAtOrBefore(client, s, windowStart));
    const commits = await client.query(`DELETE FROM ${s}.commits WHERE revision < $1`, [keepFrom]);

    await client.query(
      `UPDATE ${s}.retention SET changelog_floor = $1, changelog_floor_total = $2, version_horizon = $3`,
      [floor, floorTotal, horizon],
    );
    await client.query("COMMIT");
    return report(true, floor, horizon, changesDeleted, versionsDeleted, commits.rowCount ?? 0);
  });
}

/** The latest revision committed at or before `timeMs`, 0 when none (or none retained). */
async function revisionAtOrBefore(client: pg.PoolClient, schema: string, timeMs: number): Promise<Revision> {
  const r = await client.query<{ revision: string }>(
    `SELECT revision FROM ${schema}.commits WHERE committed_at_ms <= $1
     ORDER BY committed_at_ms DESC, revision DESC LIMIT 1`,
    [Math.floor(timeMs)],
  );
  return Number(r.rows[0]?.revision ?? 0);
}

async function one(client: pg.PoolClient, text: string): Promise<Record<string, string>> {
  const r = await client.query<Record<string, string>>(text);
  return r.rows[0]!;
}

function report(
  ran: boolean,
  changelogFloor: Revision,
  versionHorizon: Revision,
  changesDeleted: number,
  versionsDeleted: number,
  commitsDeleted: number,
): CollectionReport {
  return { ran, changelogFloor, versionHorizon, changesDeleted, versionsDeleted, commitsDeleted };
}
