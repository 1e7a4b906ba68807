/**
 * Object ids for the Tiger layer's bitmaps: the objects of one (tenant, type), numbered in the order they were
 * first seen. Numbering per (tenant, type) keeps the ids dense, so a bitset over one type's objects spans only
 * that type's ids. Ids are never reused or renumbered, so the bits of a bitmap keep their meaning for as long as
 * the layer lives (and across serialize/load, which stores the numbering).
 */
export class IdSpace {
  readonly tenant: string;
  readonly type: string;
  readonly ids = new Map<string, number>();
  /** id → object. */
  readonly objects: string[] = [];

  constructor(tenant: string, type: string) {
    this.tenant = tenant;
    this.type = type;
  }

  get size(): number {
    return this.objects.length;
  }

  intern(object: string): number {
    let id = this.ids.get(object);
    if (id === undefined) {
      id = this.objects.length;
      this.objects.push(object);
      this.ids.set(object, id);
    }
    return id;
  }
}
