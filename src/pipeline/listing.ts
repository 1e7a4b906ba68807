/**
 * The pipeline's listing queries, after validation and the revision choice (src/pipeline/pipeline.ts):
 *
 * - list objects: in a union-only model whose reverse expansion reaches exactly the allowed objects, the expansion
 *   alone: in the WASM kernel over the tenant's compiled graph when the evaluator has one at the revision
 *   (src/wasm-eval/list-objects.ts), else over a store snapshot (src/reference/exact-list-objects.ts
 *   exactListObjects); otherwise the same reverse expansion gives the candidates (a superset of the answer: in
 *   the kernel where it can, else the reference's over a snapshot) and each is asked as one batch through the
 *   layers, so a listing shares the result cache, Bloom, singleflight, Tiger and the evaluator with checks, and
 *   leaves its answers in the cache for the checks that follow it.
 * - list users and expand: no layer answers these, so they go straight to the reference evaluator at the revision.
 */

import type { Program } from "../model/program.js";
import { Evaluation } from "../reference/evaluation.js";
import { exactListObjects, reverseExpansionIsExact } from "../reference/exact-list-objects.js";
import { expand, type UsersetTree } from "../reference/expand.js";
import { candidateObjects } from "../reference/list-objects.js";
import { listUsers } from "../reference/list-users.js";
import { TupleReader } from "../reference/reader.js";
import { snapshotAtLeast } from "../request/consistency.js";
import type { ValidExpand, ValidListObjects, ValidListUsers } from "../request/validate.js";
import type { Revision, TupleStore } from "../tuples/types.js";
import type { WasmEvaluator } from "../wasm-eval/evaluator.js";
import type { CheckResolver, DepthGuard, ResolvedCheck } from "./types.js";

/** The kernel listing loads with the first listing that can use it, which keeps it out of an app's start chunk. */
let kernelListing: Promise<typeof import("../wasm-eval/list-objects.js")> | undefined;
const loadKernelListing = () => {
  kernelListing ??= import("../wasm-eval/list-objects.js");
  return kernelListing;
};

/** The warm-up of this process (once), settled when it has run or failed. */
let warmed: Promise<void> | undefined;

/**
 * Starts loading the kernel listing now, for a pipeline that has a WASM evaluator, and warms its kernel code once
 * it has loaded (src/wasm-eval/list-objects.ts warmKernelListing, once a process): the first listing then neither
 * waits for the import (1-2 ms from dist/, 10-20 ms under tsx) nor runs the ordering code cold. createEngine waits
 * for it (kernelListingWarmed), so the warm-up runs before the engine is handed out instead of as a task inside
 * whatever comes first: a load's first write carried both the import and the ~10-18 ms warm-up. A failed import
 * fails that listing, as it would have without this; a failed warm-up changes nothing.
 */
export function preloadKernelListing(): void {
  warmed ??= loadKernelListing().then(
    (listing) => {
      try {
        listing.warmKernelListing();
      } catch {
        // Only a warm-up: the listing itself reports what fails.
      }
    },
    () => {},
  );
}

/** Settles once the warm-up preloadKernelListing started has run (at once when none was started). Never rejects. */
export function kernelListingWarmed(): Promise<void> {
  return warmed ?? Promise.resolve();
}

/** What the listing queries read: the store, the model, the depth limit. */
export interface ListingContext {
  readonly program: Program;
  readonly store: TupleStore;
  readonly maxDepth: number;
  /** The WASM evaluator, when checks use one: exact listings then run in its kernel. */
  readonly wasm?: WasmEvaluator | undefined;
}

/** Where one listing reads: the revision (exactly it, or the newest kept when `exact` is false) and its instant. */
export interface ListingAt {
  readonly revision: Revision;
  readonly now: number;
  /** Read exactly `revision` (a page of a paged listing) instead of the newest kept one when it is gone. */
  readonly exact: boolean;
}

/** Runs `run` over an evaluation of the validated query's tuples (stored and contextual) at `at`. */
export async function evaluateAt<T>(
  context: ListingContext,
  query: Pick<ValidListUsers, "context" | "contextualTuples">,
  at: ListingAt,
  run: (ev: Evaluation) => Promise<T>,
): Promise<T> {
  const snapshot = at.exact
    ? await context.store.snapshot(at.revision)
    : await snapshotAtLeast(context.store, at.revision);
  try {
    const reader = new TupleReader(snapshot, context.program, query.contextualTuples, at.now);
    return await run(
      new Evaluation(reader, {
        ...(query.context !== undefined ? { context: query.context } : {}),
        maxDepth: context.maxDepth,
      }),
    );
  } finally {
    snapshot.release();
  }
}

const exactByProgram = new WeakMap<Program, boolean>();

/**
 * The objects of the query's type on which its subject has its relation, sorted. `pinned` turns a candidate into
 * the question the layers take; `outer` is the outermost layer.
 */
export async function listObjectsThrough(
  context: ListingContext & { readonly depthGuard: DepthGuard },
  query: ValidListObjects,
  at: ListingAt,
  outer: CheckResolver,
  pinned: (object: string) => ResolvedCheck,
  signal: AbortSignal | undefined,
): Promise<string[]> {
  const { program, store } = context;
  const { tenant, type, relation, user } = query;
  let exact = exactByProgram.get(program);
  if (exact === undefined) {
    exact = reverseExpansionIsExact(program);
    exactByProgram.set(program, exact);
  }
  // The expansion alone, when nothing could make check disagree: a plain subject in the request's own tenant, no
  // contextual tuples, no check able to reach the depth limit. The kernel's gives up (undefined) when its graph is
  // not at the revision or holds a flagged tuple, the snapshot's on meeting a cross-tenant or conditional tuple;
  // the candidates are then checked one by one below.
  const plain =
    query.subject.kind === "object" && query.subjectTenant === tenant && query.contextualTuples.length === 0;
  const kernelQuery = { tenant, type, relation, user };
  if (
    exact &&
    plain &&
    context.depthGuard({ objectType: type, relation, revision: at.revision } as ResolvedCheck)
  ) {
    if (context.wasm !== undefined) {
      const { listObjectsInKernel } = await loadKernelListing();
      const listed = await listObjectsInKernel(context.wasm, kernelQuery, at.revision);
      if (listed !== undefined) return listed;
    }
    const snapshot = await snapshotAtLeast(store, at.revision);
    try {
      const listed = await exactListObjects(program, snapshot, { tenant, type, relation, user }, at.now);
      if (listed !== undefined) return listed;
    } finally {
      snapshot.release();
    }
  }
  // The candidates by the same expansion in the kernel where it can (sorted already), else over a snapshot.
  const candidates =
    (plain && context.wasm !== undefined
      ? await (await loadKernelListing()).candidateObjectsInKernel(context.wasm, kernelQuery, at.revision)
      : undefined) ??
    (await evaluateAt(context, query, { ...at, exact: false }, (ev) =>
      candidateObjects(ev, {
        tenant,
        subjectTenant: query.subjectTenant,
        type,
        relation,
        subject: query.subject,
        user,
      }),
    ));
  const checks = [...candidates].map(pinned);
  const outcomes = await outer.resolveMany(checks, signal);
  const allowed: string[] = [];
  for (let i = 0; i < outcomes.length; i++) {
    const outcome = outcomes[i]!;
    if (outcome instanceof Error) throw outcome;
    if (outcome.allowed) allowed.push(checks[i]!.object);
  }
  return allowed.sort();
}

/** The subjects of every filter that have the relation on the object, deduplicated and sorted. */
export function listUsersAt(
  context: ListingContext,
  query: ValidListUsers,
  at: ListingAt,
): Promise<string[]> {
  const { tenant, subjectTenant, object, relation } = query;
  return evaluateAt(context, query, at, async (ev) => {
    const users = new Set<string>();
    for (const filter of query.filters) {
      for (const u of await listUsers(ev, { tenant, object, relation, filter, subjectTenant })) users.add(u);
    }
    return [...users].sort();
  });
}

/** One level of the userset tree of the object's relation. */
export function expandAt(context: ListingContext, query: ValidExpand, at: ListingAt): Promise<UsersetTree> {
  const { tenant, object, relation } = query;
  return evaluateAt(context, { context: undefined, contextualTuples: query.contextualTuples }, at, (ev) =>
    expand(ev, { tenant, object, relation }),
  );
}
