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

/**
 * A glob as a matcher over whole paths: `*` and `?` stay within one name, `**` spans any number of names,
 * `[abc]` / `[!abc]` are classes. A relative pattern is taken under the directory it is given with.
 */
export function globMatcher(pattern: string): RegExp {
  if (typeof pattern !== "string" || pattern === "" || pattern.length > MAX_PATH_BYTES) {
    throw new NexusError(
      "invalid_argument",
      `a glob is a non-empty string of at most ${MAX_PATH_BYTES} characters`,
      {
        pattern,
      },
    );
  }
  let out = "";
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === "*" && pattern[i + 1] === "*") {
      const slashAfter = pattern[i + 2] === "/";
      // "**/" matches zero or more whole directories; a trailing "**" anything below.
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

function invalid(path: unknown, why: string, details: Record<string, unknown> = {}): NexusError {
  return new NexusError("invalid_argument", `invalid path ${JSON.stringify(path)}: ${why}`, {
    path,
    ...details,
  });
}
