/**
 * `nexus-fast preset`: prints the built-in Nexus filesystem model, the one `check` uses without `--model`, so a
 * user can see its types, relations and permissions (and how tuples are written against it) without reading the
 * source. `--json` prints the Nexus namespace config itself, ready for `--model preset.json`.
 */
import { nexusFilesystemModel } from "../../model/preset.js";
import { parse, UsageError } from "../args.js";
import type { Io } from "../io.js";

export const PRESET_HELP = `Usage: nexus-fast preset [--json]

Prints the built-in Nexus filesystem model (Nexus's default file and group namespaces), which \`check\` uses
when no --model is given: each type's relations (direct grants, unions, tuple-to-usersets) and permissions.

Options:
  --json    print the Nexus namespace config as JSON (save it and pass it as --model preset.json)
`;

type Relation = Record<string, unknown>;

function describeRelation(rule: Relation): string {
  if ("union" in rule) return `union of ${(rule.union as string[]).join(", ")}`;
  if ("tupleToUserset" in rule) {
    const { tupleset, computedUserset } = rule.tupleToUserset as {
      tupleset: string;
      computedUserset: string;
    };
    return `${computedUserset} of the object named by ${tupleset}`;
  }
  return "direct grants (tuples)";
}

export async function runPreset(args: string[], io: Io): Promise<number> {
  const parsed = parse(args, { json: { type: "boolean" } });
  if (parsed.positionals.length > 0) throw new UsageError(`unexpected argument "${parsed.positionals[0]}"`);
  if (parsed.values.json === true) {
    io.out(JSON.stringify(nexusFilesystemModel, null, 2));
    return 0;
  }
  const lines = [
    "The built-in Nexus filesystem model (format nexus): what `nexus-fast check` uses without --model.",
    "Tuples are written object#relation@subject, e.g. file:/a/b.txt#parent@file:/a, file:/a#direct_viewer@user:alice,",
    "group:eng#member@user:alice, file:/a#direct_editor@group:eng (a group named on direct_* grants its members).",
    "",
  ];
  for (const [type, config] of Object.entries(nexusFilesystemModel) as [string, Relation][]) {
    const relations = Object.entries((config.relations ?? {}) as Record<string, Relation>);
    const permissions = Object.entries((config.permissions ?? {}) as Record<string, string[]>);
    lines.push(
      `type ${type}${relations.length + permissions.length === 0 ? " (a subject type, no relations)" : ""}`,
    );
    const width = Math.max(0, ...[...relations, ...permissions].map(([name]) => name.length));
    for (const [name, rule] of relations)
      lines.push(`  relation   ${name.padEnd(width)}  ${describeRelation(rule)}`);
    for (const [name, via] of permissions)
      lines.push(`  permission ${name.padEnd(width)}  any of ${via.join(", ")}`);
  }
  io.out(lines.join("\n"));
  return 0;
}
