/**
 * Every kernel's contract in src/kernels/abi/<kernel>.ts against both of its sides:
 * - the built dist/wasm/<kernel>.wasm (and <kernel>.scalar.wasm, the same source built without SIMD) exports
 *   exactly the names the contract lists, no more and no fewer;
 * - every shared number the contract lists is declared in the kernel's AssemblyScript source (assembly/<kernel>.ts
 *   and the files it imports) under the same name with the same value;
 * - every listed export is used by TypeScript code: a property access `.name` in src/, bench/ or test/ (a name no
 *   code reaches is an internal helper the kernel should not export);
 * - every built kernel has a contract.
 * The TypeScript side imports its numbers from the contract, and the type checks at the end hold each exports
 * interface to the listed names.
 *
 * Reads dist/wasm: run `npm run build:wasm` after changing assembly/.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";
import type { NeedleKernelExports } from "../../src/blobs/volume/needle-index.js";
import type { bloomAbi } from "../../src/kernels/abi/bloom.js";
import type { erasureAbi } from "../../src/kernels/abi/erasure.js";
import type { evaluateAbi } from "../../src/kernels/abi/evaluate.js";
import type { internAbi } from "../../src/kernels/abi/intern.js";
import type { KernelAbi } from "../../src/kernels/abi/kernel-abi.js";
import type { needleAbi } from "../../src/kernels/abi/needle.js";
import type { BloomExports } from "../../src/kernels/bloom.js";
import type { ErasureExports } from "../../src/kernels/erasure.js";
import type { InternKernelExports } from "../../src/kernels/intern.js";
import type { EvaluateKernelExports } from "../../src/wasm-eval/kernel.js";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const abiDir = join(root, "src/kernels/abi");
const wasmDir = join(root, "dist/wasm");
const abiFiles = readdirSync(abiDir)
  .filter((f) => f.endsWith(".ts") && f !== "kernel-abi.ts")
  .sort();

/** `erasure.scalar` -> `erasureScalar`: the name a kernel's contract is exported under is this plus "Abi". */
function camel(kernel: string): string {
  return kernel.replace(/[^A-Za-z0-9]+([A-Za-z0-9])/g, (_, c: string) => c.toUpperCase());
}

async function loadAbi(file: string): Promise<KernelAbi> {
  const kernel = file.slice(0, -3);
  const module = (await import(pathToFileURL(join(abiDir, file)).href)) as Record<string, unknown>;
  const abi = module[`${camel(kernel)}Abi`] as KernelAbi | undefined;
  if (abi === undefined) throw new Error(`src/kernels/abi/${file} exports no ${camel(kernel)}Abi`);
  return abi;
}

function builtKernels(): string[] {
  if (!existsSync(wasmDir)) throw new Error("dist/wasm is missing: run `npm run build:wasm`");
  return readdirSync(wasmDir)
    .filter((f) => f.endsWith(".wasm"))
    .map((f) => f.slice(0, -5))
    .sort();
}

/** The TypeScript files that may call a kernel: src/, bench/ and test/, without the contracts and this test. */
function typescriptSources(): { file: string; text: string }[] {
  const out: { file: string; text: string }[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(join(root, dir), { withFileTypes: true })) {
      const path = `${dir}/${entry.name}`;
      if (entry.isDirectory()) {
        if (entry.name !== "generated" && entry.name !== "results" && entry.name !== "node_modules")
          walk(path);
      } else if (
        entry.name.endsWith(".ts") &&
        !path.startsWith("src/kernels/abi/") &&
        path !== "test/kernels/abi.test.ts"
      ) {
        out.push({ file: path, text: readFileSync(join(root, path), "utf8") });
      }
    }
  };
  for (const dir of ["src", "bench", "test"]) walk(dir);
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// AssemblyScript constants: top-level `[export] [@inline] const NAME[: type] = expression;` in a kernel's files.

interface Declaration {
  readonly file: string;
  readonly type: string | undefined;
  readonly expression: string;
}

/** The kernel's entry file and every file it imports or re-exports from, relative paths followed. */
function sourceFiles(entry: string): string[] {
  const seen = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    const text = stripComments(readFileSync(file, "utf8"));
    for (const match of text.matchAll(/\bfrom\s+"(\.{1,2}\/[^"]+)"/g)) {
      const target = resolve(dirname(file), match[1]!);
      visit(existsSync(`${target}.ts`) ? `${target}.ts` : join(target, "index.ts"));
    }
  };
  visit(entry);
  return [...seen];
}

function stripComments(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, " ").replace(/\/\/[^\n]*/g, "");
}

/** Top-level constant declarations by name; a name declared twice (in different files) keeps every declaration. */
function declarations(files: readonly string[]): Map<string, Declaration[]> {
  const found = new Map<string, Declaration[]>();
  for (const file of files) {
    for (const [name, declaration] of declared(readFileSync(file, "utf8"), file.slice(root.length + 1))) {
      const list = found.get(name) ?? [];
      list.push(declaration);
      found.set(name, list);
    }
  }
  return found;
}

function declared(source: string, file: string): [string, Declaration][] {
  const pattern =
    /^(?:@inline\s+)?(?:export\s+)?(?:@inline\s+)?const\s+([A-Za-z_$][\w$]*)\s*(?::\s*([A-Za-z_]\w*))?\s*=\s*([^;]+);/gm;
  return [...stripComments(source).matchAll(pattern)].map((match) => [
    match[1]!,
    { file, type: match[2], expression: match[3]!.trim() },
  ]);
}

const widths: Record<string, [bits: number, signed: boolean]> = {
  i8: [8, true],
  u8: [8, false],
  i16: [16, true],
  u16: [16, false],
  i32: [32, true],
  u32: [32, false],
  isize: [32, true],
  usize: [32, false],
  i64: [64, true],
  u64: [64, false],
};

/**
 * The value of a constant: integer literals (decimal, hex, octal, binary, `_` separators), other constants, casts
 * (`<u32>x`, `x as u64`), unary - ~ +, and the binary operators * / % + - << >> >>> & ^ | with AssemblyScript's
 * precedence; the result wrapped to the declared integer type. Anything else (a call, a float) is an error.
 */
function constantValue(name: string, table: Map<string, Declaration[]>, evaluating: string[] = []): bigint {
  const list = table.get(name);
  if (list === undefined) throw new Error(`no top-level const ${name}`);
  const values = new Set(list.map((d) => evaluate(d, table, [...evaluating, name])));
  if (values.size > 1) {
    throw new Error(`${name} is declared with different values in ${list.map((d) => d.file).join(", ")}`);
  }
  return [...values][0]!;
}

function evaluate(declaration: Declaration, table: Map<string, Declaration[]>, evaluating: string[]): bigint {
  const tokens = declaration.expression.match(
    /0[xX][0-9a-fA-F_]+|0[bB][01_]+|0[oO][0-7_]+|\d[\d_]*|[A-Za-z_$][\w$]*|>>>|<<|>>|\S/g,
  );
  if (tokens === null) throw new Error(`empty expression for ${evaluating.at(-1)}`);
  let at = 0;
  const fail = (why: string): never => {
    throw new Error(`${evaluating.at(-1)} = ${declaration.expression} (${declaration.file}): ${why}`);
  };
  const peek = () => tokens[at];
  const next = () => tokens[at++] ?? fail("unexpected end");
  const expect = (token: string) => {
    if (next() !== token) fail(`expected ${token}`);
  };
  const primary = (): bigint => {
    const token = next();
    if (/^\d/.test(token)) return BigInt(token.replace(/_/g, ""));
    if (token === "(") {
      const value = expression(0);
      expect(")");
      return postfix(value);
    }
    if (token === "-") return -primary();
    if (token === "+") return primary();
    if (token === "~") return ~primary();
    if (token === "<" && /^[a-z]\w*$/.test(peek() ?? "") && tokens[at + 1] === ">") {
      const type = next();
      next();
      return wrap(primary(), type);
    }
    if (/^[A-Za-z_$]/.test(token)) {
      if (peek() === "(" || peek() === ".") fail(`${token}${peek()}…: not a constant expression`);
      if (evaluating.includes(token)) fail(`refers to itself through ${evaluating.join(" -> ")}`);
      return postfix(constantValue(token, table, evaluating));
    }
    return fail(`unexpected ${token}`);
  };
  const postfix = (value: bigint): bigint => {
    let result = value;
    while (peek() === "as") {
      next();
      result = wrap(result, next());
    }
    return result;
  };
  const precedence: Record<string, number> = {
    "|": 1,
    "^": 2,
    "&": 3,
    "<<": 4,
    ">>": 4,
    ">>>": 4,
    "+": 5,
    "-": 5,
    "*": 6,
    "/": 6,
    "%": 6,
  };
  const expression = (min: number): bigint => {
    let left = postfix(primary());
    for (let op = peek(); op !== undefined && (precedence[op] ?? 0) > min; op = peek()) {
      next();
      const right = expression(precedence[op]!);
      left = apply(op, left, right);
    }
    return left;
  };
  const apply = (op: string, a: bigint, b: bigint): bigint => {
    switch (op) {
      case "|":
        return a | b;
      case "^":
        return a ^ b;
      case "&":
        return a & b;
      case "<<":
        return a << b;
      case ">>":
      case ">>>":
        return a >> b;
      case "+":
        return a + b;
      case "-":
        return a - b;
      case "*":
        return a * b;
      case "/":
        return a / b;
      default:
        return a % b;
    }
  };
  const value = expression(0);
  if (at !== tokens.length) fail(`unexpected ${tokens[at]}`);
  return declaration.type === undefined ? value : wrap(value, declaration.type);
}

function wrap(value: bigint, type: string): bigint {
  const width = widths[type];
  if (width === undefined) throw new Error(`not an integer type: ${type}`);
  return width[1] ? BigInt.asIntN(width[0], value) : BigInt.asUintN(width[0], value);
}

// ---------------------------------------------------------------------------------------------------------------

describe("kernel ABI files", () => {
  it("every built kernel has one, and every one names a built kernel", () => {
    const built = builtKernels().map((file) => file.replace(/\.scalar$/, ""));
    const described = abiFiles.map((f) => f.slice(0, -3));
    expect([...new Set(built)].filter((kernel) => !described.includes(kernel))).toEqual([]);
    expect(described.filter((kernel) => !built.includes(kernel))).toEqual([]);
  });

  for (const file of abiFiles) {
    describe(file, () => {
      it("names its kernel and lists each export once", async () => {
        const abi = await loadAbi(file);
        expect(abi.kernel).toBe(file.slice(0, -3));
        expect(new Set(abi.exports).size).toBe(abi.exports.length);
      });

      it("lists exactly the .wasm's exports", async () => {
        const abi = await loadAbi(file);
        const builds = builtKernels().filter((f) => f === abi.kernel || f === `${abi.kernel}.scalar`);
        expect(builds).toContain(abi.kernel);
        for (const build of builds) {
          const module = new WebAssembly.Module(readFileSync(join(wasmDir, `${build}.wasm`)));
          const names = WebAssembly.Module.exports(module).map((e) => e.name);
          const listed = [...abi.exports];
          expect({ build, missing: listed.filter((n) => !names.includes(n)) }).toEqual({
            build,
            missing: [],
          });
          expect({ build, unlisted: names.filter((n) => !listed.includes(n)) }).toEqual({
            build,
            unlisted: [],
          });
        }
      });

      it("lists only exports TypeScript code uses", async () => {
        const abi = await loadAbi(file);
        const sources = typescriptSources();
        const unused = abi.exports.filter((name) => {
          const access = new RegExp(`\\.${name.replace(/\$/g, "\\$")}\\b`);
          return !sources.some(({ text }) => access.test(text));
        });
        expect(unused).toEqual([]);
      });

      it("shares numbers the AssemblyScript source declares with the same values", async () => {
        const abi = await loadAbi(file);
        const table = declarations(sourceFiles(join(root, "assembly", `${abi.kernel}.ts`)));
        for (const [name, value] of Object.entries(abi.constants)) {
          expect(Number.isSafeInteger(value), `${name} must be an integer`).toBe(true);
          expect({ name, value: constantValue(name, table) }).toEqual({ name, value: BigInt(value) });
        }
      });
    });
  }
});

describe("the constant reader", () => {
  const table = (source: string) => {
    const map = new Map<string, Declaration[]>();
    for (const match of source.matchAll(/^(\w+)(?::(\w+))? = (.+)$/gm)) {
      map.set(match[1]!, [{ file: "t", type: match[2], expression: match[3]! }]);
    }
    return map;
  };

  it("reads literals, references, casts and operators with AssemblyScript's precedence and types", () => {
    const t = table(
      [
        "A:u32 = 0x1_0",
        "B = (1 << A) - 1",
        "C:i32 = -2",
        "D:u32 = <u32>C",
        "E:u64 = 1 + 2 * 3 << 1 | 1",
        "F:usize = A as u64 * 4",
        "G:i32 = 0xffffffff",
      ].join("\n"),
    );
    expect(constantValue("A", t)).toBe(16n);
    expect(constantValue("B", t)).toBe(65535n);
    expect(constantValue("C", t)).toBe(-2n);
    expect(constantValue("D", t)).toBe(0xfffffffen);
    expect(constantValue("E", t)).toBe(15n);
    expect(constantValue("F", t)).toBe(64n);
    expect(constantValue("G", t)).toBe(-1n);
  });

  it("refuses what is not a constant expression", () => {
    const t = table(["X:usize = memory.data(8)", "Y = Y + 1", "Z = 1.5"].join("\n"));
    expect(() => constantValue("X", t)).toThrow(/not a constant expression/);
    expect(() => constantValue("Y", t)).toThrow(/refers to itself/);
    expect(() => constantValue("Z", t)).toThrow(/unexpected/);
    expect(() => constantValue("W", t)).toThrow(/no top-level const W/);
  });

  it("finds top-level declarations in the forms the kernels use, not locals", () => {
    const source = [
      "// @ts-ignore: decorator",
      "@inline export const P: u32 = 0xff; // trailing words",
      "export const Q = (1 << 4) - 1;",
      "const S: i32 = -1;",
      "/* const T = 9; */",
      "function f(): void {",
      "  const R = 3;",
      "}",
    ].join("\n");
    expect(declared(source, "t")).toEqual([
      ["P", { file: "t", type: "u32", expression: "0xff" }],
      ["Q", { file: "t", type: undefined, expression: "(1 << 4) - 1" }],
      ["S", { file: "t", type: "i32", expression: "-1" }],
    ]);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// The TypeScript side: each exports interface names exactly the contract's exports (the loader adds `memory`).

type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type Listed<T extends { exports: readonly string[] }> = Exclude<T["exports"][number], "memory">;
const typed: [
  Same<Exclude<keyof BloomExports, "memory">, Listed<typeof bloomAbi>>,
  Same<Exclude<keyof ErasureExports, "memory">, Listed<typeof erasureAbi>>,
  Same<Exclude<keyof InternKernelExports, "memory">, Listed<typeof internAbi>>,
  Same<Exclude<keyof NeedleKernelExports, "memory">, Listed<typeof needleAbi>>,
  Same<Exclude<keyof EvaluateKernelExports, "memory">, Listed<typeof evaluateAbi>>,
] = [true, true, true, true, true];
void typed;
