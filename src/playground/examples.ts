/** The models, tuples, queries and tests a fresh playground opens with. */
import type { PlaygroundState } from "./share.js";

export const OPENFGA_EXAMPLE: PlaygroundState = {
  format: "",
  model: `model
  schema 1.1

type user

type group
  relations
    define member: [user, group#member]

type folder
  relations
    define owner: [user]
    define viewer: [user, user:*, group#member] or owner

type document
  relations
    define parent: [folder]
    define owner: [user]
    define editor: [user, group#member] or owner
    define viewer: [user, group#member] or editor or viewer from parent
    define blocked: [user]
    define can_share: owner but not blocked
`,
  tuples: `# user relation object
user:anne member group:eng
group:eng#member member group:staff
user:beth owner folder:plans
folder:plans parent document:roadmap
group:staff#member editor document:roadmap
user:carl viewer document:notes
user:beth owner document:notes
user:beth blocked document:notes
`,
  queries: `check user:anne viewer document:roadmap
check user:carl viewer document:roadmap
list-objects user:beth viewer document
list-users document:roadmap viewer user
expand document:roadmap viewer
`,
  tests: `- name: roadmap
  check:
    - user: user:anne
      object: document:roadmap
      assertions: { viewer: true, editor: true, can_share: false }
    - user: user:beth
      object: document:notes
      assertions: { owner: true, can_share: false }
  list_objects:
    - user: user:beth
      type: document
      assertions: { viewer: [document:notes, document:roadmap] }
`,
};

export const SPICEDB_EXAMPLE: PlaygroundState = {
  format: "spicedb",
  model: `definition user {}

definition team {
  relation member: user | team#member
}

definition repo {
  relation owner: user
  relation reader: user | team#member
  relation banned: user
  permission write = owner
  permission read = (reader + write) - banned
}
`,
  tuples: `- user: user:ada
  relation: member
  object: team:core
- user: team:core#member
  relation: reader
  object: repo:engine
- user: user:bob
  relation: owner
  object: repo:engine
- user: user:eve
  relation: reader
  object: repo:engine
- user: user:eve
  relation: banned
  object: repo:engine
`,
  queries: `check user:ada read repo:engine
check user:eve read repo:engine
list-objects user:bob read repo
list-users repo:engine read user
expand repo:engine read
`,
  tests: `- name: repo access
  check:
    - user: user:ada
      object: repo:engine
      assertions: { read: true, write: false }
    - user: user:eve
      object: repo:engine
      assertions: { read: false }
`,
};
