/**
 * The Tiger cache layer (per-subject bitmaps of allowed objects), one concept per file:
 * - resolver.ts: `TigerResolver`, the layer itself (which bitmap answers, when it is brought forward or rebuilt);
 * - options.ts: its context and options; eligible.ts: which questions a bitmap may answer at all;
 * - bitmap.ts: the slot and bitmap records and their shared rules;
 * - slots.ts: the question index; owned.ts: the bitmaps it owns (WASM memory) and eviction;
 * - id-space.ts: object ids;
 * - members.ts: the JS-side copy of a bitmap; filter.ts: filtering objects through one bitmap;
 * - materialise.ts: building a bitmap; expiry.ts: between which instants it holds;
 * - freshness.ts: which revisions a bitmap answers; change-log.ts: the changes delivered by the feed;
 * - incremental.ts: bringing a bitmap forward;
 * - affected-objects.ts: which objects a tuple change can affect (over src/model/analysis.ts `dependents`);
 * - serialize.ts: the bitmaps as bytes.
 */
export { objectsAffectedBy } from "./affected-objects.js";
export { Members } from "./members.js";
export type { ObjectValidator, TigerContext, TigerOptions } from "./options.js";
export { TigerResolver } from "./resolver.js";
