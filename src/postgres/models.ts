/**
 * Authorization model versions in the store's `models` table: immutable rows with ULID ids (generated here, so
 * ids from several processes still sort by creation time), listed per tenant newest first.
 */
import {
  checkModelSource,
  type ModelListOptions,
  type ModelVersions,
  modelIdFactory,
  type NewModel,
  type StoredModel,
} from "../tuples/models.js";

type Query = <R extends unknown[]>(text: string, values: unknown[]) => Promise<R[]>;

export class PostgresModelVersions implements ModelVersions {
  readonly #query: Query;
  readonly #schema: string;
  readonly #clock: () => number;
  readonly #nextId = modelIdFactory();

  constructor(query: Query, schema: string, clock: () => number) {
    this.#query = query;
    this.#schema = schema;
    this.#clock = clock;
  }

  async add(model: NewModel): Promise<StoredModel> {
    const { tenant, source, format } = checkModelSource(model);
    const createdAtMs = this.#clock();
    const id = this.#nextId(createdAtMs);
    await this.#query(
      `INSERT INTO ${this.#schema}.models (id, tenant, created_at_ms, source, format) VALUES ($1, $2, $3, $4, $5)`,
      [id, tenant, createdAtMs, source, format ?? null],
    );
    return { tenant, id, createdAtMs, source, ...(format === undefined ? {} : { format }) };
  }

  async get(tenant: string, id: string): Promise<StoredModel | undefined> {
    const rows = await this.#query<ModelRow>(`${this.#select} WHERE tenant = $1 AND id = $2`, [tenant, id]);
    return rows[0] === undefined ? undefined : modelOf(rows[0]);
  }

  async list(tenant: string, options: ModelListOptions = {}): Promise<StoredModel[]> {
    const limit = options.limit;
    const rows = await this.#query<ModelRow>(
      `${this.#select} WHERE tenant = $1 AND ($2::text IS NULL OR id < $2) ORDER BY id DESC LIMIT $3`,
      [tenant, options.before ?? null, limit === undefined ? null : Math.max(0, Math.floor(limit))],
    );
    return rows.map(modelOf);
  }

  async latest(tenant: string): Promise<StoredModel | undefined> {
    return (await this.list(tenant, { limit: 1 }))[0];
  }

  get #select(): string {
    return `SELECT tenant, id, created_at_ms, source, format FROM ${this.#schema}.models`;
  }
}

type ModelRow = [string, string, string, string, string | null];

function modelOf([tenant, id, createdAt, source, format]: ModelRow): StoredModel {
  return { tenant, id, createdAtMs: Number(createdAt), source, ...(format === null ? {} : { format }) };
}
