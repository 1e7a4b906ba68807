/**
 * The volumes of one store: the active one (new needles go there) and the sealed ones (they only take reference,
 * tombstone and purge records for needles they hold). A needle that does not fit the active volume rolls the store
 * over to a new volume (the old one synced first); compaction seals the active volume before copying it, and
 * removes a volume it left empty.
 */
import * as fs from "node:fs";
import { syncDir } from "../../io/fs-io.js";
import { NexusError } from "../../util/errors.js";
import { MAX_VOLUME_BYTES, SUPERBLOCK_SIZE } from "./layout.js";
import { MAX_VOLUME_ID } from "./needle-index.js";
import { Volume } from "./volume.js";

export class VolumeSet {
  /** Every open volume by id (the live set reads it). */
  readonly byId = new Map<number, Volume>();
  readonly #dir: string;
  readonly #volumeSize: number;
  readonly #crc32c: (bytes: Uint8Array) => number;
  #active: Volume | undefined;

  /** `volumeSize`: a volume takes new needles until it reaches this many bytes (see StoreOptions). */
  constructor(dir: string, volumeSize: number, crc32c: (bytes: Uint8Array) => number) {
    this.#dir = dir;
    this.#volumeSize = volumeSize;
    this.#crc32c = crc32c;
  }

  /** The volume new needles go to. */
  get active(): Volume {
    return this.#active!;
  }

  /** Opens an existing volume (at store open, in id order); the last one opened becomes the active one. */
  open(id: number): Volume {
    const volume = Volume.open(this.#dir, id, this.#crc32c);
    this.byId.set(id, volume);
    this.#active = volume;
    return volume;
  }

  /** Makes sure there is an active volume (a new store's first). */
  async ensureActive(): Promise<void> {
    this.#active ??= await this.#create(1);
  }

  /** The volume a needle of `length` bytes goes to: the active one, or a new one when it is full. */
  async forNeedle(length: number): Promise<Volume> {
    const active = this.active;
    const fits = active.end + length <= this.#volumeSize || active.end === SUPERBLOCK_SIZE;
    if (fits && active.end + length <= MAX_VOLUME_BYTES) return active;
    await this.#rollOver(active);
    return this.active;
  }

  /** Makes sure no new data needle goes to `volume` (rolls over when it is the active one). */
  async seal(volume: Volume): Promise<void> {
    if (this.#active === volume) await this.#rollOver(volume);
  }

  /** Deletes a volume that compaction left empty (the .idx first: a lone volume file rebuilds its log). */
  async removeEmpty(volume: Volume): Promise<void> {
    if (volume === this.#active || volume.end !== SUPERBLOCK_SIZE) return;
    this.byId.delete(volume.id);
    await volume.close();
    fs.rmSync(volume.idxPath, { force: true });
    fs.rmSync(volume.path, { force: true });
    await syncDir(this.#dir);
  }

  /** Syncs every volume written since its last sync (one round of group commit). */
  async syncDirty(): Promise<void> {
    await Promise.all([...this.byId.values()].filter((v) => v.dirty).map((v) => v.sync()));
  }

  /** Syncs and closes every volume; returns the sync errors (each volume is closed regardless). */
  async close(): Promise<unknown[]> {
    const errors: unknown[] = [];
    for (const v of this.byId.values()) {
      try {
        await v.sync();
        await v.syncIdx();
      } catch (e) {
        errors.push(e);
      }
      await v.close();
    }
    return errors;
  }

  async #rollOver(active: Volume): Promise<void> {
    await active.sync();
    await active.syncIdx();
    this.#active = await this.#create(Math.max(...this.byId.keys()) + 1);
  }

  async #create(id: number): Promise<Volume> {
    if (id > MAX_VOLUME_ID) {
      throw new NexusError("io_error", `the store has used every volume id (${MAX_VOLUME_ID})`, {
        dir: this.#dir,
      });
    }
    const volume = await Volume.create(this.#dir, id, this.#crc32c);
    this.byId.set(id, volume);
    return volume;
  }
}
