/**
 * The peer workload of issue 13: the generator lives in src/cli/demo/workload.ts (the demo's "same workload as
 * the bench" section uses it too, and src/ may not import from bench/); re-exported here for the bench, with the
 * model in SpiceDB's schema language, which only the bench needs.
 */
export * from "../../src/cli/demo/workload.js";

/** The same model in SpiceDB's schema language. */
export const spicedbSchema = `definition user {}

definition group {
  relation member: user | group#member
}

definition folder {
  relation parent: folder
  relation viewer: user | group#member
  permission view = viewer + parent->view
}

definition file {
  relation parent: folder
  relation viewer: user | group#member
  permission view = viewer + parent->view
}
`;
