import { describe, expect, it } from "vitest";
import { createEngine, type Engine } from "../../src/engine/engine.js";
import { isNexusError, type NexusErrorCode } from "../../src/util/errors.js";

const model = `model
  schema 1.1
type user
type group
  relations
    define member: [user, group#member]
type folder
  relations
    define owner: [user]
    define viewer: [user, user:*, group#member] or owner
type file
  relations
    define parent: [folder]
    define blocked: [user]
    define editor: [user with in_office]
    define viewer: ([user] or viewer from parent or editor) but not blocked
condition in_office(ip: ipaddress) {
  ip.in_cidr("10.0.0.0/8")
}
`;

async function code(promise: Promise<unknown>): Promise<NexusErrorCode | string | undefined> {
  try {
    await promise;
  } catch (error) {
    return isNexusError(error) ? error.code : `not a NexusError: ${error}`;
  }
  return undefined;
}

async function message(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    return (error as Error).message;
  }
  return "no error";
}

async function engineWith(options: Partial<Parameters<typeof createEngine>[0]> = {}): Promise<Engine> {
  return createEngine({ model, ...options });
}

describe("engine: queries", () => {
  it("answers check, listObjects, listUsers, expand and read, with any Unicode in ids", async () => {
    await using engine = await engineWith();
    const file = "file:/workspace/a b/ü #1.txt";
    await engine.write({
      writes: [
        { user: "user:anne", relation: "member", object: "group:eng" },
        { user: "group:eng#member", relation: "viewer", object: "folder:/workspace" },
        { user: "folder:/workspace", relation: "parent", object: file },
        { user: "user:bob", relation: "viewer", object: file },
        { user: "user:bob", relation: "blocked", object: file },
      ],
    });
    expect(await engine.check({ user: "user:anne", relation: "viewer", object: file })).toBe(true);
    expect(await engine.check({ user: "user:bob", relation: "viewer", object: file })).toBe(false);
    expect(
      await engine.checkBulk([
        { user: "user:anne", relation: "viewer", object: file },
        { user: "user:carl", relation: "viewer", object: file },
        { user: "group:eng#member", relation: "viewer", object: "folder:/workspace" },
      ]),
    ).toEqual([true, false, true]);
    expect(await engine.listObjects({ user: "user:anne", relation: "viewer", type: "file" })).toEqual([file]);
    expect(
      await engine.listUsers({ object: file, relation: "viewer", userFilters: [{ type: "user" }] }),
    ).toEqual(["user:anne"]);
    expect(
      await engine.listUsers({
        object: "folder:/workspace",
        relation: "viewer",
        userFilters: [{ type: "group", relation: "member" }],
      }),
    ).toEqual(["group:eng#member"]);
    const tree = await engine.expand({ object: "folder:/workspace", relation: "viewer" });
    expect(tree).toEqual({
      root: {
        name: "folder:/workspace#viewer",
        union: {
          nodes: [
            { name: "folder:/workspace#viewer", leaf: { users: ["group:eng#member"] } },
            { name: "folder:/workspace#viewer", leaf: { computed: { userset: "folder:/workspace#owner" } } },
          ],
        },
      },
    });
    expect(await engine.read({ object: file })).toHaveLength(3);
    expect(await engine.read({ object: "file:", relation: "blocked" })).toEqual([
      { user: "user:bob", relation: "blocked", object: file, tenant: "default" },
    ]);
    expect(await engine.read({ user: "user:anne" })).toHaveLength(1);
  });

  it("evaluates conditions with request context, and reports missing parameters", async () => {
    await using engine = await engineWith();
    await engine.write({
      writes: [{ user: "user:anne", relation: "editor", object: "file:1", condition: { name: "in_office" } }],
    });
    const q = { user: "user:anne", relation: "viewer", object: "file:1" };
    expect(await engine.check({ ...q, context: { ip: "10.1.2.3" } })).toBe(true);
    expect(await engine.check({ ...q, context: { ip: "192.168.1.1" } })).toBe(false);
    expect(await code(engine.check(q))).toBe("condition_missing_parameter");
    expect(await code(engine.check({ ...q, context: { ip: "not an ip" } }))).toBe("invalid_argument");
    expect(await code(engine.listObjects({ user: "user:anne", relation: "viewer", type: "file" }))).toBe(
      "condition_missing_parameter",
    );
  });

  it("uses contextual tuples for one request only, validated like writes", async () => {
    await using engine = await engineWith();
    const request = {
      user: "user:anne",
      relation: "viewer",
      object: "file:1",
      contextualTuples: [{ user: "user:anne", relation: "viewer", object: "file:1" }],
    };
    expect(await engine.check(request)).toBe(true);
    expect(await engine.check({ ...request, contextualTuples: [] })).toBe(false);
    expect(
      await code(
        engine.check({
          ...request,
          contextualTuples: [{ user: "user:*", relation: "viewer", object: "file:1" }],
        }),
      ),
    ).toBe("invalid_tuple");
    expect(
      await code(
        engine.check({
          ...request,
          contextualTuples: [{ user: "user:anne", relation: "viewer", object: "file:1", tenant: "other" }],
        }),
      ),
    ).toBe("invalid_tuple");
  });

  it("rejects bad requests with stable codes and messages naming the input", async () => {
    await using engine = await engineWith();
    expect(await code(engine.check({ user: "user:anne", relation: "viewer", object: "nope:1" }))).toBe(
      "type_not_found",
    );
    expect(
      await message(engine.check({ user: "user:anne", relation: "viewer", object: "nope:1" })),
    ).toContain('"nope"');
    expect(await code(engine.check({ user: "user:anne", relation: "nope", object: "file:1" }))).toBe(
      "relation_not_found",
    );
    expect(await code(engine.check({ user: "anne", relation: "viewer", object: "file:1" }))).toBe(
      "invalid_argument",
    );
    expect(await code(engine.check({ user: "user:anne", relation: "viewer", object: "file:*" }))).toBe(
      "invalid_argument",
    );
    expect(await code(engine.check({ user: "ghost:1", relation: "viewer", object: "file:1" }))).toBe(
      "type_not_found",
    );
    expect(await code(engine.check({ user: "group:x#nope", relation: "viewer", object: "file:1" }))).toBe(
      "relation_not_found",
    );
    expect(await code(engine.listObjects({ user: "user:anne", relation: "viewer", type: "nope" }))).toBe(
      "type_not_found",
    );
    expect(
      await code(engine.listUsers({ object: "file:1", relation: "viewer", userFilters: [{ type: "nope" }] })),
    ).toBe("type_not_found");
    expect(await code(engine.listUsers({ object: "file:1", relation: "viewer", userFilters: [] }))).toBe(
      "invalid_argument",
    );
    expect(
      await code(
        engine.check({
          user: "user:anne",
          relation: "viewer",
          object: "file:1",
          consistency: "eventually" as never,
        }),
      ),
    ).toBe("invalid_argument");
    expect(
      await code(
        engine.check({ user: "user:anne", relation: "viewer", object: "file:1", context: [] as never }),
      ),
    ).toBe("invalid_argument");
    expect(
      await code(createEngine({ model: "model\n  schema 1.1\ntype a\n  relations\n    define r: nope\n" })),
    ).toBe("invalid_model");
    expect(await code(createEngine({ model, quantizationWindowMs: -1 }))).toBe("invalid_argument");
  });

  it("hits the depth limit as resolution_too_complex (configurable)", async () => {
    await using engine = await engineWith({ maxResolutionDepth: 3 });
    const writes = [];
    for (let i = 0; i < 5; i++)
      writes.push({ user: `group:${i + 1}#member`, relation: "member", object: `group:${i}` });
    writes.push({ user: "user:anne", relation: "member", object: "group:5" });
    await engine.write({ writes });
    expect(await code(engine.check({ user: "user:anne", relation: "member", object: "group:0" }))).toBe(
      "resolution_too_complex",
    );
    expect(await engine.check({ user: "user:anne", relation: "member", object: "group:3" })).toBe(true);
  });

  it("takes maxResolutionDepth up to 1,000, where a chain that deep answers in both evaluators", async () => {
    expect(await code(createEngine({ model, maxResolutionDepth: 1001 }))).toBe("invalid_argument");
    // Before the bound the kernel took up to 65,535 and overflowed V8's stack at ~2,500 levels of this model
    // (a RangeError rather than an answer).
    const folders = `model
  schema 1.1
type user
type folder
  relations
    define parent: [folder]
    define owner: [user]
    define editor: [user] or owner or editor from parent
    define viewer: [user] or editor or viewer from parent
`;
    const writes = [{ user: "user:a", relation: "owner", object: "folder:f0" }];
    for (let i = 0; i < 1005; i++)
      writes.push({ user: `folder:f${i}`, relation: "parent", object: `folder:f${i + 1}` });
    for (const evaluator of ["wasm", "reference"] as const) {
      await using engine = await createEngine({ model: folders, maxResolutionDepth: 1000, evaluator });
      for (let i = 0; i < writes.length; i += 1000) await engine.write({ writes: writes.slice(i, i + 1000) });
      expect(await engine.check({ user: "user:a", relation: "viewer", object: "folder:f998" })).toBe(true);
      expect(await code(engine.check({ user: "user:a", relation: "viewer", object: "folder:f1003" }))).toBe(
        "resolution_too_complex",
      );
    }
  });
});

describe("engine: writes", () => {
  it("validates tuples against the model, naming the tuple", async () => {
    await using engine = await engineWith();
    const bad = [
      { user: "user:anne", relation: "viewer", object: "ghost:1" },
      { user: "user:anne", relation: "nope", object: "file:1" },
      { user: "user:*", relation: "viewer", object: "file:1" },
      { user: "group:eng#member", relation: "viewer", object: "file:1" },
      { user: "user:anne", relation: "editor", object: "file:1" },
      { user: "user:anne", relation: "viewer", object: "file:1", condition: { name: "in_office" } },
      {
        user: "user:anne",
        relation: "editor",
        object: "file:1",
        condition: { name: "in_office", context: { zip: 1 } },
      },
      { user: "group:eng#member", relation: "parent", object: "file:1" },
      { user: "user:anne", relation: "viewer", object: "file:1", expiresAt: "tomorrow" },
      { user: "user:anne", relation: "viewer", object: "file:1", subjectTenant: "other" },
    ];
    for (const tuple of bad) {
      expect(await code(engine.write({ writes: [tuple] })), JSON.stringify(tuple)).toBe("invalid_tuple");
    }
    expect(await message(engine.write({ writes: [bad[2]!] }))).toContain("file:1#viewer@user:*");
    expect(await code(engine.write({}))).toBe("invalid_write");
    expect((await engine.read()).length).toBe(0);
  });

  it("rejects a whole batch on a duplicate or a missing delete, unless told to ignore", async () => {
    await using engine = await engineWith();
    const a = { user: "user:anne", relation: "viewer", object: "file:1" };
    const b = { user: "user:bob", relation: "viewer", object: "file:1" };
    const first = await engine.write({ writes: [a] });
    expect(await code(engine.write({ writes: [b, a] }))).toBe("invalid_write");
    expect(await code(engine.write({ writes: [b], deletes: [{ ...a, object: "file:2" }] }))).toBe(
      "invalid_write",
    );
    expect(await engine.read()).toHaveLength(1);
    const again = await engine.write({ writes: [a, b], onDuplicate: "ignore" });
    expect(again.revision).toBe(first.revision + 1);
    const noop = await engine.write({ deletes: [{ ...a, object: "file:9" }], onMissing: "ignore" });
    expect(noop.revision).toBe(again.revision);
    await engine.write({ deletes: [a, b] });
    expect(await engine.read()).toHaveLength(0);
  });

  it("stops counting expired tuples at expiresAt (injected clock)", async () => {
    let now = Date.parse("2030-01-01T00:00:00Z");
    await using engine = await engineWith({ clock: () => now });
    await engine.write({
      writes: [
        { user: "user:anne", relation: "viewer", object: "file:1", expiresAt: "2030-01-01T00:01:00Z" },
      ],
    });
    const q = { user: "user:anne", relation: "viewer", object: "file:1" };
    expect(await engine.check(q)).toBe(true);
    now += 59_999;
    expect(await engine.check(q)).toBe(true);
    now += 1;
    expect(await engine.check(q)).toBe(false);
    expect(await engine.listObjects({ user: "user:anne", relation: "viewer", type: "file" })).toEqual([]);
    expect(await engine.read()).toEqual([]);
    // Writing it again renews it.
    await engine.write({ writes: [{ ...q, expiresAt: "2030-01-02T00:00:00Z" }] });
    expect(await engine.check(q)).toBe(true);
  });
});

describe("engine: consistency", () => {
  it("a default read sees every write this engine acknowledged at once; tokens and fully_consistent too", async () => {
    let now = 12_300;
    await using engine = await createEngine({ model, clock: () => now });
    const q = { user: "user:anne", relation: "viewer", object: "file:1" };
    const { token } = await engine.write({ writes: [q] });
    now = 12_400;
    // The window started at 10 000, before the write: the engine still knows its own write.
    expect(await engine.check(q)).toBe(true);
    expect(await engine.check({ ...q, consistency: "minimize_latency" })).toBe(true);
    expect(await engine.check({ ...q, consistency: "fully_consistent" })).toBe(true);
    expect(await engine.check({ ...q, consistency: { atLeastAsFresh: token } })).toBe(true);
    const revoke = await engine.write({ deletes: [q] });
    expect(await engine.check(q)).toBe(false);
    expect(await engine.listObjects({ user: "user:anne", relation: "viewer", type: "file" })).toEqual([]);
    expect(await engine.check({ ...q, consistency: { atLeastAsFresh: revoke.token } })).toBe(false);
    // An older token never reads older than what the engine knows.
    expect(await engine.check({ ...q, consistency: { atLeastAsFresh: token } })).toBe(false);
  });

  it("rejects garbage tokens and tokens of another store as invalid_token", async () => {
    await using engine = await engineWith();
    await using other = await engineWith();
    const { token } = await other.write({
      writes: [{ user: "user:anne", relation: "viewer", object: "file:1" }],
    });
    const q = { user: "user:anne", relation: "viewer", object: "file:1" };
    expect(await code(engine.check({ ...q, consistency: { atLeastAsFresh: "garbage" } }))).toBe(
      "invalid_token",
    );
    expect(await code(engine.check({ ...q, consistency: { atLeastAsFresh: token } }))).toBe("invalid_token");
    expect(await code(engine.watch({ after: "nft1_AAAA" }).next())).toBe("invalid_token");
  });
});

describe("engine: watch and lifecycle", () => {
  it("streams every change after a token, in order, without gaps or duplicates, per tenant", async () => {
    await using engine = await engineWith();
    const start = await engine.token();
    const expected: string[] = [];
    for (let i = 0; i < 20; i++) {
      const tenant = i % 3 === 0 ? "other" : "default";
      const tuples = [
        { user: `user:u${i}`, relation: "viewer", object: `file:${i}` },
        { user: `user:v${i}`, relation: "viewer", object: `file:${i}` },
      ];
      await engine.write({ tenant, writes: tuples });
      if (tenant === "default") expected.push(...tuples.map((t) => `write ${t.object} ${t.user}`));
      if (i % 4 === 1) {
        await engine.write({ tenant, deletes: [tuples[0]!] });
        if (tenant === "default") expected.push(`delete ${tuples[0]!.object} ${tuples[0]!.user}`);
      }
    }
    const seen: string[] = [];
    let lastRevision = 0;
    let checkpoint: string | undefined;
    for await (const change of engine.watch({ after: start })) {
      expect(change.revision).toBeGreaterThanOrEqual(lastRevision);
      lastRevision = change.revision;
      seen.push(`${change.op} ${change.tuple.object} ${change.tuple.user}`);
      if (seen.length === 10) expect(change.endOfRevision).toBe(true);
      if (seen.length === 10) checkpoint = change.token;
      if (seen.length === expected.length) break;
    }
    expect(seen).toEqual(expected);
    // Resuming from a checkpoint continues exactly behind it.
    const resumed: string[] = [];
    for await (const change of engine.watch({ after: checkpoint! })) {
      resumed.push(`${change.op} ${change.tuple.object} ${change.tuple.user}`);
      if (resumed.length === expected.length - 10) break;
    }
    expect(resumed).toEqual(expected.slice(10));
  });

  it("fails a watch whose token is older than the changelog keeps", async () => {
    await using engine = await engineWith({ changelog: { maxEntries: 5 } });
    const start = await engine.token();
    for (let i = 0; i < 10; i++)
      await engine.write({ writes: [{ user: "user:a", relation: "viewer", object: `file:${i}` }] });
    const error = await engine
      .watch({ after: start })
      .next()
      .catch((e: unknown) => e);
    expect(isNexusError(error, "invalid_token")).toBe(true);
    expect((error as Error).message).toMatch(/no longer retained/);
  });

  it("ends watch loops on close() and on abort, and leaves nothing running", async () => {
    const before = process.getActiveResourcesInfo().length;
    const engine = await engineWith();
    const abort = new AbortController();
    const received: number[] = [];
    const aborted = (async () => {
      for await (const change of engine.watch({ signal: abort.signal })) received.push(change.revision);
      return "ended";
    })();
    const closed = (async () => {
      for await (const change of engine.watch({})) received.push(change.revision);
      return "ended";
    })();
    await engine.write({ writes: [{ user: "user:a", relation: "viewer", object: "file:1" }] });
    await new Promise((resolve) => setTimeout(resolve, 5));
    abort.abort();
    expect(await aborted).toBe("ended");
    await engine.close();
    expect(await closed).toBe("ended");
    expect(received).toEqual([1, 1]);
    expect(await code(engine.check({ user: "user:a", relation: "viewer", object: "file:1" }))).toBe("closed");
    await engine.close();
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(process.getActiveResourcesInfo().length).toBeLessThanOrEqual(before);
  });

  it("does not close a store it was given", async () => {
    const first = await engineWith();
    await first.write({ writes: [{ user: "user:a", relation: "viewer", object: "file:1" }] });
    const second = await engineWith({ store: first.store });
    await second.close();
    expect(await first.check({ user: "user:a", relation: "viewer", object: "file:1" })).toBe(true);
    await first.close();
    expect(first.store.closed).toBe(true);
  });
});
