/**
 * A scrub of the volume store: every live needle read back and checked (header, key, data checksum; BLAKE3 with
 * verifyHash) while puts and deletes go on. A needle that moved (a compaction swapped its volume) while it was
 * being read is checked again where it is now, so a move is never taken for damage.
 */
import { NexusError } from "../../util/errors.js";
import type { NeedleHeader } from "./layout.js";
import { keyHex, NeedleKind } from "./layout.js";
import type { LiveKey, LiveSet, Located } from "./live-set.js";
import { CHECK_PIECE } from "./needle-check.js";
import type { NeedleLocation } from "./needle-index.js";
import type { ScrubOptions, ScrubResult } from "./options.js";
import type { CorruptNeedle } from "./recovery.js";

/** What a scrub needs of the store. */
export interface ScrubbedStore {
  readonly live: LiveSet;
  closed(): boolean;
  readHeader(loc: NeedleLocation): Promise<NeedleHeader | string>;
  checkStored(loc: Located, key: Uint8Array, verifyHash: boolean): Promise<string>;
  reportCorrupt(needle: CorruptNeedle): void;
}

/** What a scrub found at one live needle. */
interface ScrubCheck {
  loc: Located;
  key: string | undefined;
  problem: string | undefined;
}

/**
 * Reads every live needle back and checks it (header, key, data checksum; BLAKE3 with verifyHash), while puts
 * and deletes go on. Corrupt needles are reported (here and in corruptNeedles()) and stay in place: the store
 * keeps one copy, so the repair is a put of the same content (which purges the bad copy), e.g. from a tier
 * or a replica that still has it.
 */
export async function scrubLive(store: ScrubbedStore, options: ScrubOptions): Promise<ScrubResult> {
  const live = store.live.keys();
  const result: ScrubResult = { checked: 0, bytesChecked: 0, corrupt: [], stopped: false };
  const progress = () =>
    options.onProgress?.({
      checked: result.checked,
      total: live.length,
      bytesChecked: result.bytesChecked,
      corrupt: result.corrupt.length,
    });
  let reported = 0;
  for (const n of live) {
    if (options.signal?.aborted || store.closed()) {
      result.stopped = true;
      break;
    }
    let checked: ScrubCheck | undefined;
    try {
      checked = await scrubOne(store, n, options.verifyHash === true);
    } catch (e) {
      if (isClosing(e)) {
        result.stopped = true;
        break;
      }
      throw e;
    }
    if (checked === undefined) continue; // deleted meanwhile
    const { loc, key, problem } = checked;
    result.checked++;
    result.bytesChecked += loc.length;
    if (problem !== undefined) {
      const needle: CorruptNeedle = {
        volume: loc.volume,
        offset: loc.offset,
        ...(key !== undefined ? { key } : {}),
        reason: problem,
      };
      store.reportCorrupt(needle);
      result.corrupt.push(needle);
    }
    if (result.checked % 256 === 0 || result.bytesChecked - reported >= CHECK_PIECE) {
      reported = result.bytesChecked;
      progress();
    }
  }
  progress();
  return result;
}

/**
 * Checks one live needle of a scrub: where the index has it now, and again if it moved (a compaction swapped
 * its volume) while it was being read, so that a move is never taken for damage. Undefined when it is gone.
 */
async function scrubOne(
  store: ScrubbedStore,
  n: LiveKey,
  verifyHash: boolean,
): Promise<ScrubCheck | undefined> {
  const where = () => store.live.find(n);
  let outcome: ScrubCheck | undefined;
  for (let attempt = 0; attempt < 3; attempt++) {
    const loc = where();
    if (loc === undefined) return undefined;
    let problem: string | undefined;
    let key = n.hex;
    const h = await store.readHeader(loc);
    if (typeof h === "string") problem = h;
    else {
      key = keyHex(h.key);
      const [lo, hi] = store.live.prefix(h.key);
      const indexed = n.hex !== undefined ? key === n.hex : lo === n.lo && hi === n.hi;
      if (!indexed) problem = "the index points at another needle";
      else if (h.kind !== NeedleKind.Data) problem = "the index points at a reference record";
      else {
        const state = await store.checkStored(loc, h.key, verifyHash);
        if (state !== "good") problem = state;
      }
    }
    outcome = { loc, key, problem };
    const now = where();
    if (problem === undefined || (now?.volume === loc.volume && now.offset === loc.offset)) break;
  }
  return outcome;
}

function isClosing(e: unknown): boolean {
  return e instanceof NexusError && e.code === "closed";
}
