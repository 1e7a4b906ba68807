/**
 * The tuples one request sees: a store snapshot plus the request's contextual tuples, without tuples the model
 * no longer allows and without tuples expired at the request's instant. Reads are cached for the request, so a
 * subproblem reached twice reads once, and every read sees the same snapshot.
 */
import type { Program } from "../model/program.js";
import { isValidTuple } from "../model/tuple-rules.js";
import type { RelationTuple } from "../tuples/tuple.js";
import type { TupleSnapshot } from "../tuples/types.js";

const SEP = "\u0000";

export class TupleReader {
  readonly program: Program;
  /** The request's instant (epoch ms): tuples with `expiresAt` at or before it do not count. */
  readonly now: number;
  readonly #snapshot: TupleSnapshot;
  readonly #contextualByObject = new Map<string, RelationTuple[]>();
  readonly #contextualBySubject = new Map<string, RelationTuple[]>();
  readonly #byObject = new Map<string, Promise<readonly RelationTuple[]>>();
  readonly #bySubject = new Map<string, Promise<readonly RelationTuple[]>>();

  constructor(snapshot: TupleSnapshot, program: Program, contextual: readonly RelationTuple[], now: number) {
    this.#snapshot = snapshot;
    this.program = program;
    this.now = now;
    for (const t of contextual) {
      push(this.#contextualByObject, t.tenant + SEP + t.object + SEP + t.relation, t);
      push(this.#contextualBySubject, t.subjectTenant + SEP + t.user, t);
    }
  }

  get revision(): number {
    return this.#snapshot.revision;
  }

  /** Tuples on `object#relation` in `tenant`. */
  byObject(tenant: string, object: string, relation: string): Promise<readonly RelationTuple[]> {
    const key = tenant + SEP + object + SEP + relation;
    let result = this.#byObject.get(key);
    if (result === undefined) {
      result = this.#snapshot
        .readByObject([{ tenant, object, relation }])
        .then(([stored]) => this.#counting(stored!, this.#contextualByObject.get(key)));
      this.#byObject.set(key, result);
    }
    return result;
  }

  /** Tuples (in any tenant) whose subject is `user` of `subjectTenant`. */
  bySubject(subjectTenant: string, user: string): Promise<readonly RelationTuple[]> {
    const key = subjectTenant + SEP + user;
    let result = this.#bySubject.get(key);
    if (result === undefined) {
      result = this.#snapshot
        .readBySubject([{ subjectTenant, user }])
        .then(([stored]) => this.#counting(stored!, this.#contextualBySubject.get(key)));
      this.#bySubject.set(key, result);
    }
    return result;
  }

  #counting(
    stored: readonly RelationTuple[],
    contextual: readonly RelationTuple[] | undefined,
  ): RelationTuple[] {
    const out: RelationTuple[] = [];
    for (const list of [contextual ?? [], stored]) {
      for (const t of list) {
        if (t.expiresAt !== undefined && t.expiresAt <= this.now) continue;
        if (!isValidTuple(this.program, t)) continue;
        out.push(t);
      }
    }
    return out;
  }
}

function push(map: Map<string, RelationTuple[]>, key: string, t: RelationTuple): void {
  const list = map.get(key);
  if (list === undefined) map.set(key, [t]);
  else list.push(t);
}
