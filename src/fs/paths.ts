/**
 * Paths of a NexusFS: absolute POSIX paths, one tree per tenant. A path is also the id of its permission object,
 * `file:<path>`, so the characters the tuple syntax gives a meaning to are refused (`#` would split a subject
 * `file:/a#b` into a userset).
 */
import { NexusError } from "../util/errors.js";

/** Longest path, in UTF-8 bytes (Linux's PATH_MAX). */
export const MAX_PATH_BYTES = 4096;
/** Longest name of one entry, in UTF-8 bytes (Linux's NAME_MAX). */
export const MAX_NAME_BYTES = 255;

const encoder = new TextEncoder();

/** The canonical form of `path` ("/a/b": no trailing slash, no empty, "." or ".." part); invalid_argument otherwise. */
export function normalizePath(path: unknown): string {
  if (typeof path !== "string" || !path.startsWith("/")) {
    throw invalid(path, "a path is absolute (it starts with /)");
  }
  // A lone surrogate has no UTF-8 form: the engine refuses a tuple naming it (after the bytes were stored).
  if (/[\uD800-\uDFFF]/u.test(path)) throw invalid(path, "a path is well-formed UTF-16 (no lone surrogate)");
  if (encoder.encode(path).length > MAX_PATH_BYTES) {
    throw invalid(path, `a path is at most ${MAX_PATH_BYTES} bytes`, { limit: MAX_PATH_BYTES });
  }
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are exactly what is refused
  if (/[\u0000-\u001f#]/.test(path)) throw invalid(path, "a path holds no control character and no #");
  if (path === "/") return "/";
  const parts = path.slice(1).split("/");
  if (parts[parts.length - 1] === "") parts.pop();
  for (const part of parts) {
    if (part === "" || part === "." || part === "..")
      throw invalid(path, 'a path has no empty, "." or ".." part');
    if (encoder.encode(part).length > MAX_NAME_BYTES) {
      throw invalid(path, `a name is at most ${MAX_NAME_BYTES} bytes`, { limit: MAX_NAME_BYTES });
    }
  }
  return `/${parts.join("/")}`;
}

/** The directory holding `path` (undefined for the root). */
export function parentOf(path: string): string | undefined {
  if (path === "/") return undefined;
  const slash = path.lastIndexOf("/");
  return slash === 0 ? "/" : path.slice(0, slash);
}

/** The last part of `path` ("" for the root). */
export function nameOf(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1);
}

export function joinPath(dir: string, name: string): string {
  return dir === "/" ? `/${name}` : `${dir}/${name}`;
}

/** Whether `path` is `dir` or lies below it. */
export function isWithin(path: string, dir: string): boolean {
  return dir === "/" || path === dir || path.startsWith(`${dir}/`);
}

/** The permission object of a path. */
export function objectOf(path: string): string {
  return `file:${path}`;
}

/** The path of a permission object, or undefined when it is not a file object. */
export function pathOfObject(object: string): string | undefined {
  return object.startsWith("file:/") ? object.slice(5) : undefined;
}

/** One part of a glob. */
type GlobToken =
  | { readonly k: "literal"; readonly c: string }
  | { readonly k: "one" }
  | { readonly k: "star" }
  | { readonly k: "any" }
  | { readonly k: "dirs" }
  | {
      readonly k: "class";
      readonly negated: boolean;
      readonly ranges: readonly (readonly [number, number])[];
    };

/**
 * A glob as a matcher over whole paths: `*` and `?` stay within one name, `**` spans any number of names,
 * `[abc]` / `[!abc]` are classes (ranges as `a-z`). A relative pattern is taken under the directory it is given
 * with. Matching runs the pattern as a set of positions over the path's characters, in time linear in their
 * product (a regular expression backtracks: `*a*a*a*a*a*a*b` against a long name took seconds).
 */
export function globMatcher(pattern: string): { test(path: string): boolean } {
  if (typeof pattern !== "string" || pattern === "" || pattern.length > MAX_PATH_BYTES) {
    throw new NexusError(
      "invalid_argument",
      `a glob is a non-empty string of at most ${MAX_PATH_BYTES} characters`,
      {
        pattern,
      },
    );
  }
  const tokens = globTokens(pattern);
  const m = tokens.length;
  // State 2i: before token i; 2i+1: inside a name that `**/` (token i) is passing over.
  const mark = new Int32Array(2 * m + 2);
  let stamp = 0;
  const add = (into: number[], state: number) => {
    let s = state;
    for (;;) {
      if (mark[s] === stamp) return;
      mark[s] = stamp;
      into.push(s);
      const t = s % 2 === 0 ? tokens[s / 2] : undefined;
      // `*`, `**` and `**/` may match nothing.
      if (t === undefined || (t.k !== "star" && t.k !== "any" && t.k !== "dirs")) return;
      s += 2;
    }
  };
  return {
    test(path: string): boolean {
      let current: number[] = [];
      stamp++;
      add(current, 0);
      for (const c of path) {
        const next: number[] = [];
        stamp++;
        for (const s of current) {
          if (s % 2 === 1) {
            add(next, c === "/" ? s - 1 : s);
            continue;
          }
          const t = tokens[s / 2];
          if (t === undefined) continue;
          switch (t.k) {
            case "literal":
              if (c === t.c) add(next, s + 2);
              break;
            case "one":
              if (c !== "/") add(next, s + 2);
              break;
            case "class":
              if (inClass(t, c)) add(next, s + 2);
              break;
            case "star":
              if (c !== "/") add(next, s);
              break;
            case "any":
              add(next, s);
              break;
            case "dirs":
              if (c !== "/") add(next, s + 1);
              break;
          }
        }
        if (next.length === 0) return false;
        current = next;
      }
      return current.includes(2 * m);
    },
  };
}

function globTokens(pattern: string): GlobToken[] {
  const chars = Array.from(pattern);
  const tokens: GlobToken[] = [];
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i]!;
    if (c === "*" && chars[i + 1] === "*") {
      // "**/" matches zero or more whole directories; a "**" otherwise anything, across names.
      const slashAfter = chars[i + 2] === "/";
      tokens.push({ k: slashAfter ? "dirs" : "any" });
      i += slashAfter ? 2 : 1;
    } else if (c === "*") tokens.push({ k: "star" });
    else if (c === "?") tokens.push({ k: "one" });
    else if (c === "[" && chars.indexOf("]", i + 2) > 0) {
      const end = chars.indexOf("]", i + 2);
      let body = chars.slice(i + 1, end);
      const negated = body[0] === "!" || body[0] === "^";
      if (negated) body = body.slice(1);
      const ranges: [number, number][] = [];
      for (let j = 0; j < body.length; j++) {
        const from = body[j]!.codePointAt(0)!;
        if (body[j + 1] === "-" && j + 2 < body.length) {
          const to = body[j + 2]!.codePointAt(0)!;
          if (to < from) {
            throw new NexusError(
              "invalid_argument",
              `a glob's range ${body[j]}-${body[j + 2]} is out of order`,
              {
                pattern,
              },
            );
          }
          ranges.push([from, to]);
          j += 2;
        } else ranges.push([from, from]);
      }
      tokens.push({ k: "class", negated, ranges });
      i = end;
    } else tokens.push({ k: "literal", c });
  }
  return tokens;
}

function inClass(
  t: { readonly negated: boolean; readonly ranges: readonly (readonly [number, number])[] },
  c: string,
): boolean {
  const code = c.codePointAt(0)!;
  return t.ranges.some(([from, to]) => code >= from && code <= to) !== t.negated;
}

function invalid(path: unknown, why: string, details: Record<string, unknown> = {}): NexusError {
  return new NexusError("invalid_argument", `invalid path ${JSON.stringify(path)}: ${why}`, {
    path,
    ...details,
  });
}
