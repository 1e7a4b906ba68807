/**
 * A Nexus-shaped permissions workload, deterministic from a seed: teams nested `teamDepth` deep, a folder tree
 * `folderDepth` deep whose files inherit through `parent`, grants to teams at every folder level, a few direct
 * user grants and denials-by-omission. One builder for every bench that needs it (check, cache, parallel, ...).
 *
 * The tuples are written against the Nexus preset (`nexusFilesystemModel`); `spicedbSchema` is the same model in
 * SpiceDB's language (relation names use `_` where Nexus uses `-`), and `toSpiceDb` maps a tuple to it, so the same
 * workload can be loaded into a real SpiceDB and the answers compared.
 *
 * Object ids are valid SpiceDB ids (letters, digits, `/`, `_`, `-`): paths without dots.
 */
import { seededRandom as prng } from "../../src/util/random.js";

/** The shared seeded PRNG, so every run and every engine sees the same workload. */
export { prng };

export interface Tuple {
  readonly user: string;
  readonly relation: string;
  readonly object: string;
}

export interface Question {
  readonly user: string;
  readonly relation: string;
  readonly object: string;
}

export interface FilesystemWorkloadOptions {
  /** Levels of nested teams under each root team (default 5). */
  teamDepth?: number;
  /** Child teams per team (default 3). */
  teamFanout?: number;
  /** Root teams (default 2). */
  rootTeams?: number;
  /** Users in each leaf team (default 2). */
  usersPerLeafTeam?: number;
  /** Folder levels below each root folder (default 4). */
  folderDepth?: number;
  /** Sub-folders per folder (default 4). */
  folderFanout?: number;
  /** Root folders (default 2). */
  rootFolders?: number;
  /** Files in each leaf folder (default 8). */
  filesPerLeafFolder?: number;
  /** Questions to sample for check / bulk check (default 1000). */
  questions?: number;
  seed?: number;
}

export interface FilesystemWorkload {
  readonly tuples: readonly Tuple[];
  readonly users: readonly string[];
  readonly teams: readonly string[];
  readonly folders: readonly string[];
  readonly files: readonly string[];
  /** Mixed allowed/denied `read` / `write` questions on files, deterministic from the seed. */
  readonly questions: readonly Question[];
  /** A user whose access comes through the deepest team nesting (for single-check and listObjects cases). */
  readonly deepUser: string;
  readonly stats: Readonly<Record<string, number>>;
}

export function buildFilesystemWorkload(options: FilesystemWorkloadOptions = {}): FilesystemWorkload {
  const teamDepth = options.teamDepth ?? 5;
  const teamFanout = options.teamFanout ?? 3;
  const rootTeams = options.rootTeams ?? 2;
  const usersPerLeafTeam = options.usersPerLeafTeam ?? 2;
  const folderDepth = options.folderDepth ?? 4;
  const folderFanout = options.folderFanout ?? 4;
  const rootFolders = options.rootFolders ?? 2;
  const filesPerLeafFolder = options.filesPerLeafFolder ?? 8;
  const random = prng(options.seed ?? 42);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;

  const tuples: Tuple[] = [];
  const users: string[] = [];
  const teams: string[] = [];
  const teamsByLevel: string[][] = Array.from({ length: teamDepth + 1 }, () => []);
  let deepUser = "";

  // Teams: members of a child team are members of its parent (group:parent#member@group:child#member).
  const addTeam = (id: string, level: number): void => {
    teams.push(`group:${id}`);
    teamsByLevel[level]!.push(`group:${id}`);
    if (level === teamDepth) {
      for (let u = 0; u < usersPerLeafTeam; u++) {
        const user = `user:${id.replaceAll("/", "_")}_u${u}`;
        users.push(user);
        if (!deepUser) deepUser = user;
        tuples.push({ user, relation: "member", object: `group:${id}` });
      }
      return;
    }
    for (let c = 0; c < teamFanout; c++) {
      const child = `${id}-${c}`;
      tuples.push({ user: `group:${child}#member`, relation: "member", object: `group:${id}` });
      addTeam(child, level + 1);
    }
  };
  for (let r = 0; r < rootTeams; r++) addTeam(`team${r}`, 0);
  // A few people outside every team: every question about them is a denial.
  for (let o = 0; o < 8; o++) users.push(`user:outsider${o}`);

  // Folders and files: every child names its parent.
  const folders: string[] = [];
  const files: string[] = [];
  const foldersByLevel: string[][] = Array.from({ length: folderDepth + 1 }, () => []);
  const addFolder = (path: string, level: number, parent: string | undefined): void => {
    const folder = `file:${path}`;
    folders.push(folder);
    foldersByLevel[level]!.push(folder);
    if (parent) tuples.push({ user: parent, relation: "parent", object: folder });
    if (level === folderDepth) {
      for (let f = 0; f < filesPerLeafFolder; f++) {
        const file = `file:${path}/f${f}`;
        files.push(file);
        tuples.push({ user: folder, relation: "parent", object: file });
      }
      return;
    }
    for (let c = 0; c < folderFanout; c++) addFolder(`${path}/d${c}`, level + 1, folder);
  };
  for (let r = 0; r < rootFolders; r++) addFolder(`root${r}`, 0, undefined);

  // Grants: root folders viewed by root teams (access 5 team levels x 4 folder levels deep), editors granted to
  // mid-level teams on mid-level folders, owners on a few leaves, and direct user grants on some files.
  foldersByLevel[0]!.forEach((folder, i) => {
    tuples.push({
      user: teamsByLevel[0]![i % teamsByLevel[0]!.length]!,
      relation: "direct_viewer",
      object: folder,
    });
  });
  for (const folder of foldersByLevel[Math.min(2, folderDepth)]!) {
    if (random() < 0.5) {
      tuples.push({
        user: pick(teamsByLevel[Math.min(2, teamDepth)]!),
        relation: "direct_editor",
        object: folder,
      });
    }
  }
  for (const folder of foldersByLevel[folderDepth]!) {
    if (random() < 0.1) tuples.push({ user: pick(users), relation: "direct_owner", object: folder });
  }
  for (const file of files) {
    if (random() < 0.05) tuples.push({ user: pick(users), relation: "direct_viewer", object: file });
  }

  // Questions: read / write on random files by random users (team members, outsiders).
  const questions: Question[] = [];
  const count = options.questions ?? 1000;
  for (let q = 0; q < count; q++) {
    questions.push({ user: pick(users), relation: random() < 0.7 ? "read" : "write", object: pick(files) });
  }

  return {
    tuples,
    users,
    teams,
    folders,
    files,
    questions,
    deepUser,
    stats: {
      tuples: tuples.length,
      users: users.length,
      teams: teams.length,
      folders: folders.length,
      files: files.length,
    },
  };
}

/**
 * The Nexus preset in SpiceDB's schema language. Nexus's `{}` relations accept any subject; here they list the
 * subject forms the workload writes (a user, a team itself, a team's members). Nexus relations that are rewrites
 * become permissions, and `shared-*` becomes `shared_*` (SpiceDB names cannot contain `-`).
 */
export const spicedbSchema = `definition user {}

definition group {
  relation member: user | group#member
  relation admin: user | group#member
  permission viewer = admin + member
  permission read = viewer + member + admin
  permission write = admin
  permission manage = admin
}

definition file {
  relation parent: file
  relation direct_owner: user | group | group#member
  relation direct_editor: user | group | group#member
  relation direct_viewer: user | group | group#member
  relation shared_viewer: user | group#member
  relation shared_editor: user | group#member
  relation shared_owner: user | group#member
  permission parent_owner = parent->owner
  permission parent_editor = parent->editor
  permission parent_viewer = parent->viewer
  permission group_owner = direct_owner->member
  permission group_editor = direct_editor->member
  permission group_viewer = direct_viewer->member
  permission owner = direct_owner + parent_owner + group_owner + shared_owner
  permission editor = direct_editor + parent_editor + group_editor + shared_editor + shared_owner
  permission viewer = direct_viewer + parent_viewer + group_viewer + shared_viewer + shared_editor + shared_owner
  permission read = editor + viewer + owner
  permission write = editor + owner
  permission execute = owner
  permission traverse = editor + viewer + owner
}
`;

/** A workload tuple as SpiceDB sees it: `shared-*` relations renamed, subjects split into object and relation. */
export function toSpiceDb(tuple: Tuple): {
  resourceType: string;
  resourceId: string;
  relation: string;
  subjectType: string;
  subjectId: string;
  subjectRelation?: string;
} {
  const [resourceType, resourceId] = splitObject(tuple.object);
  const [subject, subjectRelation] = tuple.user.split("#") as [string, string | undefined];
  const [subjectType, subjectId] = splitObject(subject);
  return {
    resourceType,
    resourceId,
    relation: tuple.relation.replaceAll("-", "_"),
    subjectType,
    subjectId,
    ...(subjectRelation ? { subjectRelation } : {}),
  };
}

export function splitObject(object: string): [type: string, id: string] {
  const colon = object.indexOf(":");
  return [object.slice(0, colon), object.slice(colon + 1)];
}
