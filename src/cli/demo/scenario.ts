/**
 * The demo's world, as data: two tenants of a Nexus agent filesystem using the Nexus preset model. Deterministic
 * (no randomness but a seeded PRNG), so the demo's answers are the same on every run and a test can hold it to them.
 *
 * acme:   teams nested five deep (staff > engineering > platform > storage > oncall, plus design and finance under
 *         staff), a folder tree /acme/projects/<project>/<area>/<year>/<file> four levels below the tenant root,
 *         staff may read every project, engineering may edit apollo, carol owns /acme/hr.
 * globex: a small team and tree of its own; dave works there.
 * Plus one cross-tenant share (dave may read one acme file through `shared-viewer`) and one expiring grant (erin,
 * a contractor, may edit hermes until `expiresAt`).
 */
import { seededRandom as prng } from "../../util/random.js";

export interface DemoTuple {
  readonly user: string;
  readonly relation: string;
  readonly object: string;
  /** Epoch milliseconds after which the tuple grants nothing. */
  readonly expiresAt?: number;
}

export interface DemoQuestion {
  /** The tenant the question is asked in (the object's). */
  readonly tenant: string;
  /** The user's tenant when it differs (a cross-tenant question). */
  readonly subjectTenant?: string;
  readonly user: string;
  readonly relation: string;
  readonly object: string;
  /** What the preset model must answer, and why (printed next to the answer). */
  readonly expected: boolean;
  readonly why: string;
}

export interface DemoTenant {
  readonly name: string;
  readonly tuples: readonly DemoTuple[];
  readonly teams: number;
  readonly people: number;
  readonly folders: number;
  readonly files: number;
}

export interface DemoScenario {
  readonly tenants: readonly DemoTenant[];
  /** The cross-tenant grant: written in the object's tenant (acme), naming a subject of another tenant (globex). */
  readonly share: {
    readonly tuple: DemoTuple;
    readonly objectTenant: string;
    readonly subjectTenant: string;
  };
  /** The expiring grant (in acme). */
  readonly expiring: DemoTuple;
  readonly questions: readonly DemoQuestion[];
  /** A directory to list (as `ls` would: check `read` on every entry), the user listing it, and its entries. */
  readonly listing: {
    readonly tenant: string;
    readonly user: string;
    readonly dir: string;
    readonly entries: readonly string[];
  };
  /** The grant the demo revokes, and the question whose answer flips because of it. */
  readonly revoke: { readonly tuple: DemoTuple; readonly question: DemoQuestion };
  /** The question whose answer flips when the expiring grant lapses. */
  readonly expiryQuestion: DemoQuestion;
  /** Every file of acme (for bulk checks and list-objects). */
  readonly acmeFiles: readonly string[];
  readonly acmePeople: readonly string[];
}

export interface DemoScenarioOptions {
  /** Files in acme's project tree (default 5,000; the tree's shape stays, leaves get more or fewer files). */
  files?: number;
  /** When the expiring grant lapses, epoch ms (default: an hour from now). */
  expiresAt?: number;
  seed?: number;
}

const PROJECTS = ["apollo", "hermes", "zeus", "athena", "hera", "ares", "demeter", "dionysus"];
const AREAS = ["docs", "src", "data", "design"];
const YEARS = ["2024", "2025"];

const file = (path: string) => `file:${path}`;
const group = (name: string) => `group:${name}`;
const user = (name: string) => `user:${name}`;

export function buildDemoScenario(options: DemoScenarioOptions = {}): DemoScenario {
  const totalFiles = Math.max(16, options.files ?? 5000);
  const expiresAt = options.expiresAt ?? Date.now() + 3_600_000;
  const random = prng(options.seed ?? 7);

  // --- acme: teams
  const acme: DemoTuple[] = [];
  const chain = ["acme-staff", "acme-engineering", "acme-platform", "acme-storage", "acme-oncall"];
  for (let i = 1; i < chain.length; i++) {
    acme.push({ user: `${group(chain[i]!)}#member`, relation: "member", object: group(chain[i - 1]!) });
  }
  for (const sibling of ["acme-design", "acme-finance"]) {
    acme.push({ user: `${group(sibling)}#member`, relation: "member", object: group("acme-staff") });
  }
  const leafTeams = ["acme-oncall", "acme-storage", "acme-platform", "acme-design", "acme-finance"];
  const people = ["alice", "bob", "carol"];
  acme.push({ user: user("alice"), relation: "member", object: group("acme-oncall") });
  acme.push({ user: user("bob"), relation: "member", object: group("acme-design") });
  acme.push({ user: user("carol"), relation: "member", object: group("acme-finance") });
  const extraPeople = Math.max(10, Math.round(totalFiles / 25));
  for (let p = 0; p < extraPeople; p++) {
    const name = `acme-user-${p}`;
    people.push(name);
    acme.push({ user: user(name), relation: "member", object: group(leafTeams[p % leafTeams.length]!) });
  }
  acme.push({ user: user("carol"), relation: "admin", object: group("acme-finance") });

  // --- acme: folder tree, /acme/projects/<project>/<area>/<year>/<file>
  const acmeFiles: string[] = [];
  let folders = 0;
  const folder = (path: string, parent: string | undefined) => {
    folders++;
    if (parent) acme.push({ user: file(parent), relation: "parent", object: file(path) });
  };
  folder("/acme", undefined);
  folder("/acme/projects", "/acme");
  const leaves: string[] = [];
  for (const project of PROJECTS) {
    folder(`/acme/projects/${project}`, "/acme/projects");
    for (const area of AREAS) {
      folder(`/acme/projects/${project}/${area}`, `/acme/projects/${project}`);
      for (const year of YEARS) {
        const leaf = `/acme/projects/${project}/${area}/${year}`;
        folder(leaf, `/acme/projects/${project}/${area}`);
        leaves.push(leaf);
      }
    }
  }
  const perLeaf = Math.max(1, Math.floor(totalFiles / leaves.length));
  let extra = totalFiles - perLeaf * leaves.length;
  for (const leaf of leaves) {
    const count = perLeaf + (extra > 0 ? 1 : 0);
    if (extra > 0) extra--;
    for (let f = 0; f < count; f++) {
      const path = f === 0 ? `${leaf}/roadmap.md` : f === 1 ? `${leaf}/notes.md` : `${leaf}/file-${f}.txt`;
      acme.push({ user: file(leaf), relation: "parent", object: file(path) });
      acmeFiles.push(file(path));
    }
  }
  folder("/acme/hr", "/acme");
  for (const name of ["salaries.csv", "reviews.md", "handbook.md"]) {
    acme.push({ user: file("/acme/hr"), relation: "parent", object: file(`/acme/hr/${name}`) });
    acmeFiles.push(file(`/acme/hr/${name}`));
  }

  // --- acme: grants (a team is granted by naming the team; group_* expands it to its members)
  acme.push({ user: group("acme-staff"), relation: "direct_viewer", object: file("/acme/projects") });
  const apolloEditors: DemoTuple = {
    user: group("acme-engineering"),
    relation: "direct_editor",
    object: file("/acme/projects/apollo"),
  };
  acme.push(apolloEditors);
  acme.push({ user: user("carol"), relation: "direct_owner", object: file("/acme/hr") });
  // A sprinkle of personal grants, so bulk checks see some variety.
  for (let g = 0; g < Math.max(4, Math.round(totalFiles / 100)); g++) {
    const target = acmeFiles[Math.floor(random() * acmeFiles.length)]!;
    const person = people[Math.floor(random() * people.length)]!;
    acme.push({ user: user(person), relation: "direct_editor", object: target });
  }

  const roadmap = "/acme/projects/apollo/docs/2025/roadmap.md";
  const notes = "/acme/projects/apollo/docs/2025/notes.md";
  const hermesFile = acmeFiles.find((f) => f.startsWith("file:/acme/projects/hermes/"))!;
  const expiring: DemoTuple = {
    user: user("erin"),
    relation: "direct_editor",
    object: file("/acme/projects/hermes"),
    expiresAt,
  };
  // Not among acme's tuples: the demo writes it after everything else, so its lifetime starts when it is written
  // (a slow build must not let it lapse before the questions that expect it valid are asked).

  // --- globex: its own small world
  const globex: DemoTuple[] = [
    { user: user("dave"), relation: "member", object: group("globex-research") },
    { user: user("frank"), relation: "member", object: group("globex-research") },
    { user: `${group("globex-research")}#member`, relation: "member", object: group("globex-staff") },
    { user: file("/globex"), relation: "parent", object: file("/globex/lab") },
    { user: group("globex-staff"), relation: "direct_viewer", object: file("/globex") },
  ];
  for (let f = 0; f < 20; f++) {
    globex.push({
      user: file("/globex/lab"),
      relation: "parent",
      object: file(`/globex/lab/result-${f}.csv`),
    });
  }

  // --- the cross-tenant share: acme's roadmap, readable by globex's dave
  const share = {
    tuple: { user: user("dave"), relation: "shared-viewer", object: file(roadmap) },
    objectTenant: "acme",
    subjectTenant: "globex",
  };

  const q = (
    tenant: string,
    who: string,
    relation: string,
    path: string,
    expected: boolean,
    why: string,
    subjectTenant?: string,
  ): DemoQuestion => ({
    tenant,
    ...(subjectTenant ? { subjectTenant } : {}),
    user: user(who),
    relation,
    object: file(path),
    expected,
    why,
  });
  const revokeQuestion = q(
    "acme",
    "alice",
    "write",
    roadmap,
    false,
    "engineering's editor grant was revoked",
  );
  const expiryQuestion: DemoQuestion = {
    tenant: "acme",
    user: user("erin"),
    relation: "write",
    object: hermesFile,
    expected: false,
    why: "erin's grant has expired",
  };
  const questions: DemoQuestion[] = [
    q(
      "acme",
      "alice",
      "read",
      roadmap,
      true,
      "staff viewer on /acme/projects; alice is 5 teams down, file 4 folders down",
    ),
    q("acme", "alice", "write", roadmap, true, "engineering edits /acme/projects/apollo"),
    q("acme", "bob", "read", roadmap, true, "bob is in design, under staff"),
    q("acme", "bob", "write", roadmap, false, "design has no editor grant on apollo"),
    q(
      "acme",
      "alice",
      "read",
      "/acme/hr/salaries.csv",
      false,
      "hr is carol's; staff reads only /acme/projects",
    ),
    q("acme", "carol", "execute", "/acme/hr/salaries.csv", true, "carol owns /acme/hr"),
    q("acme", "erin", "write", hermesFile.slice("file:".length), true, "expiring grant, still valid"),
    q(
      "acme",
      "dave",
      "read",
      roadmap,
      true,
      "acme shared this file with globex's dave (shared-viewer)",
      "globex",
    ),
    q("acme", "dave", "read", notes, false, "the share covers one file, not its folder", "globex"),
    q(
      "globex",
      "alice",
      "read",
      "/globex/lab/result-3.csv",
      false,
      "tenants are isolated: no grant from globex",
      "acme",
    ),
    q(
      "globex",
      "dave",
      "read",
      "/globex/lab/result-3.csv",
      true,
      "research is in globex staff, which views /globex",
    ),
  ];

  const listingDir = "/acme/projects/apollo/docs/2025";
  const listing = {
    tenant: "acme",
    user: user("bob"),
    dir: listingDir,
    entries: acmeFiles.filter((f) => f.startsWith(`file:${listingDir}/`)),
  };

  return {
    tenants: [
      {
        name: "acme",
        tuples: acme,
        teams: chain.length + 2,
        people: people.length + 1,
        folders,
        files: acmeFiles.length,
      },
      { name: "globex", tuples: globex, teams: 2, people: 2, folders: 2, files: 20 },
    ],
    share,
    expiring,
    questions,
    listing,
    revoke: { tuple: apolloEditors, question: revokeQuestion },
    expiryQuestion,
    acmeFiles,
    acmePeople: people.map(user),
  };
}
