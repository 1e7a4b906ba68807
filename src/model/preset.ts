/**
 * The default Nexus filesystem model, mirroring Nexus's own default namespaces (nexi-lab/nexus,
 * `bricks/rebac/default_namespaces.py`: DEFAULT_FILE_NAMESPACE and DEFAULT_GROUP_NAMESPACE), so a check here
 * answers what Nexus answers for the same tuples.
 *
 * Writing tuples against it (Zanzibar direction, object#relation@subject):
 * - folder tree: `file:/a/b.txt#parent@file:/a` (the child names its parent directory);
 * - grants: `file:/a#direct_viewer@user:alice`; a group grant names the group itself,
 *   `file:/a#direct_editor@group:eng`, which `group_editor` expands to `group:eng#member`;
 * - membership: `group:eng#member@user:alice`, nested teams `group:eng#member@group:backend#member`;
 * - cross-tenant shares go on `shared-viewer` / `shared-editor` / `shared-owner` (marked shareable).
 * Permissions: file `read` / `write` / `execute` / `traverse`, group `read` / `write` / `manage`.
 *
 * `traverse` is the one addition. Nexus's NexusFS checks `traverse` on a directory before listing or globbing it
 * (then filters the entries by `read`, and falls back to "anything readable below"), but its default namespace
 * defines no `traverse`, so there that first check never succeeds and every listing takes the fallback. Here
 * `traverse` is granted by what grants `read`: viewer, editor or owner. Those already include the grants inherited
 * from every directory above (`parent_*`), so "read, or traverse inherited from the parent" needs no term of its
 * own. It answers exactly what `read` answers; a model that wants a traverse-only grant adds a relation to it.
 *
 * `user` and `agent` (Nexus's subject entity types) have no namespace in Nexus; they are declared here with no
 * relations because the engine checks that every subject's type is part of the model.
 */
import type { NexusNamespaces } from "./nexus.js";

export const nexusFilesystemModel = {
  user: { relations: {} },
  agent: { relations: {} },
  file: {
    relations: {
      // Structure: the parent directory.
      parent: {},
      // Granted explicitly.
      direct_owner: {},
      direct_editor: {},
      direct_viewer: {},
      // Inherited from the parent directory, recursively (owner/editor/viewer, not direct_*).
      parent_owner: { tupleToUserset: { tupleset: "parent", computedUserset: "owner" } },
      parent_editor: { tupleToUserset: { tupleset: "parent", computedUserset: "editor" } },
      parent_viewer: { tupleToUserset: { tupleset: "parent", computedUserset: "viewer" } },
      // A group named on a direct_* relation grants its members.
      group_owner: { tupleToUserset: { tupleset: "direct_owner", computedUserset: "member" } },
      group_editor: { tupleToUserset: { tupleset: "direct_editor", computedUserset: "member" } },
      group_viewer: { tupleToUserset: { tupleset: "direct_viewer", computedUserset: "member" } },
      // Cross-tenant shares.
      "shared-viewer": {},
      "shared-editor": {},
      "shared-owner": {},
      // Higher levels include lower ones through the shared-* members, as in Nexus.
      owner: { union: ["direct_owner", "parent_owner", "group_owner", "shared-owner"] },
      editor: { union: ["direct_editor", "parent_editor", "group_editor", "shared-editor", "shared-owner"] },
      viewer: {
        union: [
          "direct_viewer",
          "parent_viewer",
          "group_viewer",
          "shared-viewer",
          "shared-editor",
          "shared-owner",
        ],
      },
    },
    permissions: {
      read: ["editor", "viewer", "owner"],
      write: ["editor", "owner"],
      execute: ["owner"],
      traverse: ["editor", "viewer", "owner"],
    },
  },
  group: {
    relations: {
      member: {},
      admin: {},
      viewer: { union: ["admin", "member"] },
    },
    permissions: {
      read: ["viewer", "member", "admin"],
      write: ["admin"],
      manage: ["admin"],
    },
  },
} as const satisfies NexusNamespaces;
