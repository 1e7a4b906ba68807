/**
 * Globs: the matcher agrees with the regular expression it replaced on random patterns and paths, and a pattern
 * that made that expression backtrack (many stars, no match) answers at once through NexusFS's glob.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Engine } from "../../src/engine/engine.js";
import type { FileSystem } from "../../src/fs/filesystem.js";
import { globMatcher } from "../../src/fs/paths.js";
import { ALICE, BOB, tempDir, twoTenants } from "./helpers.js";

let cleanup: () => void;
let fs: FileSystem;
let engine: Engine;

beforeEach(async () => {
  let dir: string;
  ({ dir, cleanup } = tempDir());
  ({ fs, engine } = await twoTenants(dir));
});

afterEach(async () => {
  await fs.close();
  await engine.close();
  cleanup();
});

/** The regular expression globs were (it backtracks: only for short inputs here). */
function reference(pattern: string): RegExp {
  let out = "";
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === "*" && pattern[i + 1] === "*") {
      const slashAfter = pattern[i + 2] === "/";
      out += slashAfter ? "(?:[^/]+/)*" : ".*";
      i += slashAfter ? 2 : 1;
    } else if (c === "*") out += "[^/]*";
    else if (c === "?") out += "[^/]";
    else if (c === "[") {
      const end = pattern.indexOf("]", i + 2);
      if (end < 0) out += "\\[";
      else {
        let body = pattern.slice(i + 1, end);
        if (body.startsWith("!")) body = `^${body.slice(1)}`;
        out += `[${body.replace(/[\\\]]/g, "\\$&")}]`;
        i = end;
      }
    } else out += c.replace(/[.+^${}()|\\]/g, "\\$&");
  }
  return new RegExp(`^${out}$`, "u");
}

/** A small deterministic generator (xorshift), so a failure names its seed. */
function random(seed: number) {
  let x = seed || 1;
  return (n: number) => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) % n;
  };
}

describe("globMatcher", () => {
  it("agrees with the regular expression it replaced", () => {
    // Each part of a pattern, with strings that it may or may not match (a path is built from them half the time).
    const parts: Record<string, string[]> = {
      a: ["a"],
      b: ["b", "a"],
      "/": ["/"],
      "*": ["", "a", "ab", "b/"],
      "**": ["", "a/b", "/", "ab"],
      "**/": ["", "a/", "a/b/", "/", "a"],
      "?": ["a", "/", "é", ""],
      "[ab]": ["a", "c"],
      "[!a]": ["a", "b", "/"],
      "[a-c]": ["b", "d"],
      "[^b]": ["b", "a"],
      "[": ["["],
      "]": ["]"],
      "-": ["-"],
      "!": ["!"],
      é: ["é", "e"],
      "😀": ["😀"],
    };
    const names = Object.keys(parts);
    const pathChars = ["a", "b", "c", "/", "-", "]", "[", "!", "é", "😀"];
    let compared = 0;
    let matched = 0;
    for (let seed = 1; seed <= 6000; seed++) {
      const next = random(seed);
      let pattern = "/";
      let built = "/";
      for (let n = next(7); n >= 0; n--) {
        const part = names[next(names.length)]!;
        pattern += part;
        built += parts[part]![next(parts[part]!.length)];
      }
      let path = "/";
      for (let n = next(9); n >= 0; n--) path += pathChars[next(pathChars.length)];
      if (seed % 2 === 0) path = built;
      let expected: boolean;
      try {
        expected = reference(pattern).test(path);
      } catch {
        continue; // the expression refused it (a lone "]", a range out of order)
      }
      expect(globMatcher(pattern).test(path), `${pattern} on ${path} (seed ${seed})`).toBe(expected);
      compared++;
      if (expected) matched++;
    }
    expect(compared).toBeGreaterThan(4000);
    expect(matched).toBeGreaterThan(500);
  });

  it("refuses a class whose range is out of order, and takes a lone ] literally", () => {
    expect(() => globMatcher("/[z-a]")).toThrow(expect.objectContaining({ code: "invalid_argument" }));
    expect(globMatcher("/a]").test("/a]")).toBe(true);
  });
});

describe("glob against names that made the regular expression backtrack", () => {
  it("answers at once, many stars against long names", async () => {
    const alice = fs.as(ALICE);
    await alice.mkdir("/d");
    await alice.write(`/d/${"a".repeat(250)}`, "x");
    await alice.write(`/${"a".repeat(60)}`, "x");
    await alice.write(`/${"a".repeat(59)}b`, "x");
    await alice.share("/d", { user: BOB.user, relation: "viewer" });
    const started = performance.now();
    expect(await alice.glob(`/${"*a".repeat(6)}*b`)).toEqual([`/${"a".repeat(59)}b`]);
    expect(await alice.glob(`/${"*a".repeat(40)}*b`)).toEqual([`/${"a".repeat(59)}b`]);
    expect(await alice.glob(`/**/${"*a".repeat(100)}*b`)).toEqual([]);
    expect(await fs.as(BOB).glob(`/d/${"?*".repeat(100)}*b`)).toEqual([]);
    expect(await fs.as(BOB).glob(`/d/${"?*".repeat(100)}`)).toEqual([`/d/${"a".repeat(250)}`]);
    // The expression took 2.5 s for the first alone (each "*a" more multiplied it).
    expect(performance.now() - started).toBeLessThan(1000);
  });
});
