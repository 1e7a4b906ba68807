/**
 * SpiceDB schema language -> Program: a tokenizer and a recursive-descent parser, then name resolution.
 *
 * Supported: `definition` (type names with `prefix/` namespaces), `relation name: user | user:* | group#member |
 * user with caveat | user with expiration | user with caveat and expiration`, `permission name = expr`
 * with `+` (union), `&` (intersection), `-` (exclusion), parentheses, `nil`, arrows `rel->perm` and the arrow
 * functions `rel.any(perm)` and `rel.all(perm)`; `caveat name(param type, …) { CEL }` (the CEL body is kept verbatim as the condition
 * expression, after a syntax check); `use expiration`; `//`, `/* *\/` and `/** doc *\/` comments; `;` or a line
 * break between statements.
 *
 * Precedence follows SpiceDB's parser: `+` binds tightest, then `&`, then `-`; all are left-associative, so
 * `a + b - c` is `(a + b) - c` and `a - b + c` is `a - (b + c)`.
 *
 * Intersection arrows `rel.all(perm)` compile to a tuple-to-userset with `all`.
 *
 * Acceptance follows SpiceDB's schema checks (compared with a real SpiceDB in
 * test/model/spicedb-differential.test.ts): besides names and references, a relation may not list the same
 * allowed subject type twice (`user` and `user with cav` differ), every caveat parameter must be used, and the
 * rules validate.ts applies to SpiceDB programs (wildcards on the left of arrows or behind another type's
 * userset, permissions that alias each other in a cycle).
 *
 * Not supported, rejected with "invalid_model": chained arrows `a->b->c` (SpiceDB rejects them too),
 * composable-schema `import` / `partial`, the `bytes` caveat parameter type.
 */
import { parse as parseCel } from "@marcbachmann/cel-js";
import { NexusError } from "../util/errors.js";
import { DEFAULT_MODEL_LIMITS, type ModelLimits } from "./limits.js";
import type {
  ConditionDef,
  ConditionParamType,
  Program,
  RelationDef,
  Rewrite,
  SubjectType,
  TypeDef,
} from "./program.js";
import { validateProgram } from "./validate.js";

// ---------------------------------------------------------------------------------------------------------------
// Tokens

type TokenKind =
  | "ident"
  | "{"
  | "}"
  | "("
  | ")"
  | ":"
  | "|"
  | "#"
  | "*"
  | "="
  | "+"
  | "&"
  | "-"
  | "->"
  | "."
  | ","
  | "/"
  | ";"
  | "<"
  | ">"
  | "eof";

interface Token {
  readonly kind: TokenKind;
  readonly text: string;
  readonly offset: number;
  readonly line: number;
  readonly column: number;
  /** A line break (or the start of input) separates this token from the previous one. */
  readonly newlineBefore: boolean;
}

interface Position {
  readonly line: number;
  readonly column: number;
}

function syntaxError(at: Position, message: string, details: Record<string, unknown> = {}): NexusError {
  return new NexusError("invalid_model", `SpiceDB schema ${at.line}:${at.column}: ${message}`, {
    line: at.line,
    column: at.column,
    ...details,
  });
}

const PUNCTUATION = new Set([
  "{",
  "}",
  "(",
  ")",
  ":",
  "|",
  "#",
  "*",
  "=",
  "+",
  "&",
  ".",
  ",",
  "/",
  ";",
  "<",
  ">",
]);

/** A lazy lexer: the parser pulls one token at a time, so a caveat's CEL body can be read raw. */
class Lexer {
  private pos = 0;
  private line = 1;
  private lineStart = 0;

  constructor(private readonly source: string) {}

  position(): Position {
    return { line: this.line, column: this.pos - this.lineStart + 1 };
  }

  private advance(count = 1): void {
    for (let i = 0; i < count; i++) {
      if (this.source[this.pos] === "\n") {
        this.line++;
        this.lineStart = this.pos + 1;
      }
      this.pos++;
    }
  }

  /** Skips blanks and comments; reports whether a line break was crossed. */
  private skipTrivia(): boolean {
    const s = this.source;
    let newline = this.pos === 0;
    while (this.pos < s.length) {
      const c = s[this.pos]!;
      if (c === "\n") {
        newline = true;
        this.advance();
      } else if (c === " " || c === "\t" || c === "\r" || c === "\uFEFF") {
        this.advance();
      } else if (c === "/" && s[this.pos + 1] === "/") {
        while (this.pos < s.length && s[this.pos] !== "\n") this.advance();
      } else if (c === "/" && s[this.pos + 1] === "*") {
        const start = this.position();
        const end = s.indexOf("*/", this.pos + 2);
        if (end < 0) throw syntaxError(start, "unterminated comment");
        const body = s.slice(this.pos, end + 2);
        if (body.includes("\n")) newline = true;
        this.advance(end + 2 - this.pos);
      } else {
        break;
      }
    }
    return newline;
  }

  next(): Token {
    const newlineBefore = this.skipTrivia();
    const { line, column } = this.position();
    const offset = this.pos;
    const s = this.source;
    const make = (kind: TokenKind, text: string): Token => {
      this.advance(text.length);
      return { kind, text, offset, line, column, newlineBefore };
    };
    if (this.pos >= s.length) return { kind: "eof", text: "", offset, line, column, newlineBefore };
    const c = s[this.pos]!;
    if (/[A-Za-z_]/.test(c)) {
      const match = /^[A-Za-z_][A-Za-z0-9_]*/.exec(s.slice(this.pos, this.pos + 256))!;
      return make("ident", match[0]);
    }
    if (c === "-" && s[this.pos + 1] === ">") return make("->", "->");
    if (c === "-") return make("-", "-");
    if (PUNCTUATION.has(c)) return make(c as TokenKind, c);
    throw syntaxError({ line, column }, `unexpected character ${JSON.stringify(c)}`);
  }

  /**
   * Reads a caveat's CEL body: everything up to the `}` that balances the `{` just consumed, skipping braces
   * inside string literals and comments. Returns the body and where it starts.
   */
  readBalancedBody(open: Position): { text: string; start: Position } {
    const s = this.source;
    const start = this.position();
    const from = this.pos;
    let depth = 1;
    while (this.pos < s.length) {
      const c = s[this.pos]!;
      if (c === '"' || c === "'") {
        const triple = s.startsWith(c.repeat(3), this.pos);
        const close = triple ? c.repeat(3) : c;
        this.advance(close.length);
        while (this.pos < s.length && !s.startsWith(close, this.pos)) {
          if (s[this.pos] === "\\") this.advance();
          if (!triple && s[this.pos] === "\n")
            throw syntaxError(this.position(), "unterminated string in caveat");
          this.advance();
        }
        if (this.pos >= s.length) throw syntaxError(start, "unterminated string in caveat expression");
        this.advance(close.length);
        continue;
      }
      if (c === "/" && s[this.pos + 1] === "/") {
        while (this.pos < s.length && s[this.pos] !== "\n") this.advance();
        continue;
      }
      if (c === "{") depth++;
      if (c === "}") {
        depth--;
        if (depth === 0) {
          const text = s.slice(from, this.pos);
          this.advance();
          return { text, start };
        }
      }
      this.advance();
    }
    throw syntaxError(open, "caveat body is not closed with }");
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Syntax tree

type Expr =
  | { readonly kind: "ref"; readonly name: string; readonly at: Position }
  | { readonly kind: "nil"; readonly at: Position }
  | {
      readonly kind: "arrow";
      readonly tupleset: string;
      readonly computed: string;
      /** `tupleset.all(computed)` (an intersection arrow). */
      readonly all: boolean;
      readonly at: Position;
    }
  | {
      readonly kind: "union" | "intersection" | "exclusion";
      readonly left: Expr;
      readonly right: Expr;
      readonly at: Position;
    };

interface AllowedType {
  readonly type: string;
  readonly relation?: string;
  readonly wildcard?: boolean;
  readonly caveat?: string;
  readonly expiration: boolean;
  readonly at: Position;
}

type Member =
  | {
      readonly kind: "relation";
      readonly name: string;
      readonly types: readonly AllowedType[];
      readonly at: Position;
    }
  | { readonly kind: "permission"; readonly name: string; readonly expr: Expr; readonly at: Position };

interface Definition {
  readonly name: string;
  readonly members: readonly Member[];
  readonly at: Position;
}

interface Caveat {
  readonly name: string;
  readonly parameters: ReadonlyMap<string, ConditionParamType>;
  readonly expression: string;
  readonly at: Position;
}

interface Schema {
  readonly useFlags: ReadonlySet<string>;
  readonly definitions: readonly Definition[];
  readonly caveats: readonly Caveat[];
}

// ---------------------------------------------------------------------------------------------------------------
// Parser

const KNOWN_USE_FLAGS = new Set(["expiration"]);
const SCALAR_PARAM_TYPES = new Set([
  "bool",
  "string",
  "int",
  "uint",
  "double",
  "duration",
  "timestamp",
  "ipaddress",
  "any",
]);

/** SpiceDB's identifier rule for type, relation and caveat names (each `/`-separated segment). */
const SEGMENT = /^[a-z][a-z0-9_]{1,62}[a-z0-9]$/;

class Parser {
  private lookahead: Token | undefined;

  constructor(
    private readonly lexer: Lexer,
    // limits.ts maxNestingDepth: `a - b - c …` nests one exclusion per `-` (parentheses are pre-scanned).
    private readonly maxNesting = DEFAULT_MODEL_LIMITS.maxNestingDepth,
  ) {}

  private peek(): Token {
    this.lookahead ??= this.lexer.next();
    return this.lookahead;
  }

  private take(): Token {
    const token = this.peek();
    this.lookahead = undefined;
    return token;
  }

  private is(kind: TokenKind, text?: string): boolean {
    const token = this.peek();
    return token.kind === kind && (text === undefined || token.text === text);
  }

  private accept(kind: TokenKind, text?: string): Token | undefined {
    return this.is(kind, text) ? this.take() : undefined;
  }

  private expect(kind: TokenKind, what: string): Token {
    const token = this.peek();
    if (token.kind !== kind) throw syntaxError(token, `expected ${what}, found ${show(token)}`);
    return this.take();
  }

  private expectKeyword(word: string): Token {
    const token = this.peek();
    if (token.kind !== "ident" || token.text !== word) {
      throw syntaxError(token, `expected "${word}", found ${show(token)}`);
    }
    return this.take();
  }

  /** A name segment, checked against SpiceDB's identifier rule. */
  private identifier(what: string): Token {
    const token = this.expect("ident", what);
    if (!SEGMENT.test(token.text)) {
      throw syntaxError(
        token,
        `invalid ${what} "${token.text}": names are 3-64 characters of a-z, 0-9 and _, starting with a letter and not ending with _`,
        { name: token.text },
      );
    }
    return token;
  }

  /** `name` or `prefix/name` (type and caveat names). */
  private typePath(what: string): { name: string; at: Position } {
    const first = this.identifier(what);
    let name = first.text;
    while (this.accept("/")) name += `/${this.identifier(what).text}`;
    return { name, at: first };
  }

  /** A statement inside a definition (or at the root) must end with `;`, a line break, or the closing `}`. */
  private endStatement(): void {
    if (this.accept(";")) return;
    const token = this.peek();
    if (token.kind === "}" || token.kind === "eof" || token.newlineBefore) return;
    throw syntaxError(token, `expected end of statement (line break or ;), found ${show(token)}`);
  }

  parseSchema(): Schema {
    const useFlags = new Set<string>();
    const definitions: Definition[] = [];
    const caveats: Caveat[] = [];
    for (;;) {
      while (this.accept(";")) {}
      const token = this.peek();
      if (token.kind === "eof") break;
      if (token.kind !== "ident")
        throw syntaxError(token, `expected "definition", "caveat" or "use", found ${show(token)}`);
      switch (token.text) {
        case "use": {
          this.take();
          const flag = this.expect("ident", "a use flag");
          if (!KNOWN_USE_FLAGS.has(flag.text)) {
            throw syntaxError(
              flag,
              `unknown use flag "${flag.text}" (known: ${[...KNOWN_USE_FLAGS].join(", ")})`,
            );
          }
          useFlags.add(flag.text);
          this.endStatement();
          break;
        }
        case "definition":
          definitions.push(this.definition());
          break;
        case "caveat":
          caveats.push(this.caveat());
          break;
        case "import":
        case "partial":
          throw syntaxError(
            token,
            `"${token.text}" (composable schemas) is not supported; inline the schema`,
          );
        default:
          throw syntaxError(token, `expected "definition", "caveat" or "use", found ${show(token)}`);
      }
    }
    return { useFlags, definitions, caveats };
  }

  private definition(): Definition {
    const keyword = this.expectKeyword("definition");
    const { name } = this.typePath("definition name");
    this.expect("{", '"{" after the definition name');
    const members: Member[] = [];
    for (;;) {
      while (this.accept(";")) {}
      if (this.accept("}")) break;
      const token = this.peek();
      if (token.kind === "ident" && token.text === "relation") members.push(this.relation());
      else if (token.kind === "ident" && token.text === "permission") members.push(this.permission());
      else if (token.kind === "eof") throw syntaxError(token, `definition "${name}" is not closed with }`);
      else throw syntaxError(token, `expected "relation", "permission" or "}", found ${show(token)}`);
      this.endStatement();
    }
    return { name, members, at: keyword };
  }

  private relation(): Member {
    const keyword = this.expectKeyword("relation");
    const name = this.identifier("relation name");
    this.expect(":", `":" after relation "${name.text}"`);
    const types: AllowedType[] = [this.allowedType()];
    while (this.accept("|")) types.push(this.allowedType());
    return { kind: "relation", name: name.text, types, at: keyword };
  }

  private allowedType(): AllowedType {
    const { name: type, at } = this.typePath("subject type");
    let relation: string | undefined;
    let wildcard = false;
    if (this.accept("#")) {
      relation = this.identifier("subject relation").text;
    } else if (this.accept(":")) {
      this.expect("*", '"*" (a wildcard subject type is written type:*)');
      wildcard = true;
    }
    let caveat: string | undefined;
    let expiration = false;
    if (this.accept("ident", "with")) {
      const trait = this.peek();
      if (trait.kind === "ident" && trait.text === "expiration") {
        this.take();
        expiration = true;
        if (this.is("ident", "and")) {
          throw syntaxError(
            this.peek(),
            "the caveat must come before expiration, e.g. `with <caveat_name> and expiration`",
          );
        }
      } else {
        caveat = this.typePath("caveat name").name;
        if (this.accept("ident", "and")) {
          this.expectKeyword("expiration");
          expiration = true;
        }
      }
    }
    return {
      type,
      ...(relation !== undefined ? { relation } : {}),
      ...(wildcard ? { wildcard } : {}),
      ...(caveat !== undefined ? { caveat } : {}),
      expiration,
      at,
    };
  }

  private permission(): Member {
    const keyword = this.expectKeyword("permission");
    const name = this.identifier("permission name");
    this.expect("=", `"=" after permission "${name.text}"`);
    const expr = this.exclusion();
    return { kind: "permission", name: name.text, expr, at: keyword };
  }

  // Lowest precedence first: `-`, then `&`, then `+`.
  private exclusion(): Expr {
    let left = this.intersection();
    let chain = 0;
    for (let op = this.accept("-"); op; op = this.accept("-")) {
      if (++chain > this.maxNesting) {
        throw syntaxError(op, `more than limits.maxNestingDepth (${this.maxNesting}) exclusions in a row`);
      }
      left = { kind: "exclusion", left, right: this.intersection(), at: op };
    }
    return left;
  }

  private intersection(): Expr {
    let left = this.union();
    for (let op = this.accept("&"); op; op = this.accept("&")) {
      left = { kind: "intersection", left, right: this.union(), at: op };
    }
    return left;
  }

  private union(): Expr {
    let left = this.arrow();
    for (let op = this.accept("+"); op; op = this.accept("+")) {
      left = { kind: "union", left, right: this.arrow(), at: op };
    }
    return left;
  }

  /** `name`, `nil`, `(expr)`, `tupleset->computed`, `tupleset.any(computed)`. */
  private arrow(): Expr {
    const token = this.peek();
    if (this.accept("(")) {
      const inner = this.exclusion();
      this.expect(")", '")"');
      if (this.is("->") || this.is(".")) {
        throw syntaxError(
          this.peek(),
          "an arrow must start from a relation name, not a parenthesised expression",
        );
      }
      return inner;
    }
    if (token.kind !== "ident")
      throw syntaxError(token, `expected a relation, permission or "nil", found ${show(token)}`);
    this.take();
    if (token.text === "nil") return { kind: "nil", at: token };
    const tupleset = token.text;
    let computed: string | undefined;
    let all = false;
    if (this.accept("->")) {
      computed = this.expect("ident", `a relation or permission after "${tupleset}->"`).text;
    } else if (this.accept(".")) {
      const fn = this.expect("ident", `"any" or "all" after "${tupleset}."`);
      if (fn.text !== "any" && fn.text !== "all") {
        throw syntaxError(fn, `unknown arrow function "${fn.text}" (expected any or all)`);
      }
      all = fn.text === "all";
      this.expect("(", `"(" after ".${fn.text}"`);
      computed = this.expect("ident", "a relation or permission").text;
      this.expect(")", '")"');
    }
    if (computed === undefined) return { kind: "ref", name: tupleset, at: token };
    if (this.is("->") || this.is(".")) {
      throw syntaxError(
        this.peek(),
        "chained arrows (a->b->c) are not supported; add an intermediate permission",
      );
    }
    return { kind: "arrow", tupleset, computed, all, at: token };
  }

  private caveat(): Caveat {
    const keyword = this.expectKeyword("caveat");
    const { name } = this.typePath("caveat name");
    this.expect("(", `"(" after caveat "${name}"`);
    const parameters = new Map<string, ConditionParamType>();
    if (!this.is(")")) {
      do {
        const param = this.expect("ident", "a parameter name");
        if (parameters.has(param.text)) {
          throw syntaxError(param, `duplicate parameter "${param.text}" in caveat "${name}"`);
        }
        parameters.set(param.text, this.paramType());
      } while (this.accept(","));
    }
    this.expect(")", '")" after the caveat parameters');
    if (parameters.size === 0)
      throw syntaxError(keyword, `caveat "${name}" must declare at least one parameter`);
    const open = this.expect("{", '"{" before the caveat expression');
    if (this.lookahead) throw new NexusError("internal", "SpiceDB parser read past a caveat's opening brace");
    const body = this.lexer.readBalancedBody(open);
    const expression = body.text.trim();
    if (expression === "") throw syntaxError(open, `caveat "${name}" has an empty expression`);
    let ast: unknown;
    try {
      ast = parseCel(expression).ast;
    } catch (cause) {
      throw syntaxError(body.start, `caveat "${name}" has an invalid CEL expression: ${firstLine(cause)}`, {
        caveat: name,
      });
    }
    // SpiceDB refuses a parameter the expression never reads.
    const used = new Set<string>();
    collectIdentifiers(ast, used);
    for (const param of parameters.keys()) {
      if (!used.has(param)) {
        throw syntaxError(keyword, `parameter "${param}" of caveat "${name}" is unused`, {
          caveat: name,
          parameter: param,
        });
      }
    }
    return { name, parameters, expression, at: keyword };
  }

  private paramType(): ConditionParamType {
    const token = this.expect("ident", "a parameter type");
    if (token.text === "list" || token.text === "map") {
      this.expect("<", `"<" after ${token.text}`);
      const inner = this.paramType();
      this.expect(">", `">" closing ${token.text}<…>`);
      return token.text === "list" ? { list: inner } : { map: inner };
    }
    if (token.text === "bytes") {
      throw syntaxError(token, 'caveat parameter type "bytes" is not supported by this engine');
    }
    if (!SCALAR_PARAM_TYPES.has(token.text)) {
      throw syntaxError(token, `unknown caveat parameter type "${token.text}"`);
    }
    return token.text as ConditionParamType;
  }
}

/** The identifiers a CEL syntax tree (cel-js's `{ op, args }` nodes) reads. */
function collectIdentifiers(node: unknown, out: Set<string>): void {
  if (Array.isArray(node)) {
    for (const child of node) collectIdentifiers(child, out);
    return;
  }
  if (typeof node !== "object" || node === null) return;
  const { op, args } = node as { op?: unknown; args?: unknown };
  if (op === "id" && typeof args === "string") out.add(args);
  else collectIdentifiers(args, out);
}

function show(token: Token): string {
  return token.kind === "eof" ? "end of input" : JSON.stringify(token.text);
}

function firstLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split("\n")[0]!;
}

// ---------------------------------------------------------------------------------------------------------------
// Resolution: names -> Program

function resolve(schema: Schema): Program {
  const conditions = new Map<string, ConditionDef>();
  for (const caveat of schema.caveats) {
    if (conditions.has(caveat.name)) throw syntaxError(caveat.at, `caveat "${caveat.name}" is defined twice`);
    conditions.set(caveat.name, {
      name: caveat.name,
      expression: caveat.expression,
      parameters: caveat.parameters,
    });
  }

  const definitions = new Map<string, Definition>();
  const members = new Map<string, Map<string, Member>>();
  for (const def of schema.definitions) {
    if (definitions.has(def.name)) throw syntaxError(def.at, `definition "${def.name}" is defined twice`);
    definitions.set(def.name, def);
    const byName = new Map<string, Member>();
    for (const member of def.members) {
      if (byName.has(member.name)) {
        throw syntaxError(member.at, `"${member.name}" is defined twice in definition "${def.name}"`);
      }
      byName.set(member.name, member);
    }
    members.set(def.name, byName);
  }

  const types = new Map<string, TypeDef>();
  for (const def of schema.definitions) {
    const own = members.get(def.name)!;
    const relations = new Map<string, RelationDef>();
    for (const member of def.members) {
      if (member.kind === "relation") {
        const seen = new Set<string>();
        for (const t of member.types) {
          const source = allowedTypeSource(t);
          if (seen.has(source)) {
            throw syntaxError(
              t.at,
              `relation "${member.name}" of "${def.name}" allows subject type "${source}" twice`,
              { type: def.name, relation: member.name },
            );
          }
          seen.add(source);
        }
        relations.set(member.name, {
          name: member.name,
          rewrite: { kind: "direct" },
          directSubjects: member.types.map((t) => subjectType(t, schema, members, conditions)),
          allowsExpiration: member.types.some((t) => t.expiration),
          shareable: false,
          isPermission: false,
        });
      } else {
        relations.set(member.name, {
          name: member.name,
          rewrite: rewriteOf(member.expr, def.name, own),
          directSubjects: [],
          allowsExpiration: false,
          shareable: false,
          isPermission: true,
        });
      }
    }
    types.set(def.name, { name: def.name, relations });
  }
  return { format: "spicedb", types, conditions };
}

/** An allowed subject type as SpiceDB names it when comparing them (`user:*`, `team#member with cav and expiration`). */
function allowedTypeSource(t: AllowedType): string {
  const subject = t.wildcard ? `${t.type}:*` : t.relation !== undefined ? `${t.type}#${t.relation}` : t.type;
  const traits = [...(t.caveat !== undefined ? [t.caveat] : []), ...(t.expiration ? ["expiration"] : [])];
  return traits.length > 0 ? `${subject} with ${traits.join(" and ")}` : subject;
}

function subjectType(
  allowed: AllowedType,
  schema: Schema,
  members: Map<string, Map<string, Member>>,
  conditions: Map<string, ConditionDef>,
): SubjectType {
  const target = members.get(allowed.type);
  if (!target) {
    throw syntaxError(allowed.at, `subject type "${allowed.type}" is not defined`, { type: allowed.type });
  }
  if (allowed.relation !== undefined && !target.has(allowed.relation)) {
    throw syntaxError(
      allowed.at,
      `"${allowed.type}#${allowed.relation}" names a relation "${allowed.type}" does not have`,
      { type: allowed.type, relation: allowed.relation },
    );
  }
  if (allowed.caveat !== undefined && !conditions.has(allowed.caveat)) {
    throw syntaxError(allowed.at, `caveat "${allowed.caveat}" is not defined`, { caveat: allowed.caveat });
  }
  if (allowed.expiration && !schema.useFlags.has("expiration")) {
    throw syntaxError(allowed.at, '"with expiration" needs "use expiration" at the top of the schema');
  }
  return {
    type: allowed.type,
    ...(allowed.relation !== undefined ? { relation: allowed.relation } : {}),
    ...(allowed.wildcard ? { wildcard: true } : {}),
    ...(allowed.caveat !== undefined ? { condition: allowed.caveat } : {}),
  };
}

function rewriteOf(expr: Expr, typeName: string, own: Map<string, Member>): Rewrite {
  const recurse = (e: Expr): Rewrite => rewriteOf(e, typeName, own);
  switch (expr.kind) {
    case "nil":
      return { kind: "none" };
    case "ref":
      if (!own.has(expr.name)) throw notFound(expr.at, typeName, expr.name);
      return { kind: "computed", relation: expr.name };
    case "arrow": {
      const tupleset = own.get(expr.tupleset);
      if (!tupleset) throw notFound(expr.at, typeName, expr.tupleset);
      if (tupleset.kind !== "relation") {
        throw syntaxError(
          expr.at,
          `"${expr.tupleset}" in "${expr.tupleset}->${expr.computed}" is a permission; arrows must start from a relation`,
        );
      }
      // Whether some subject type of the tupleset has the computed relation is a shared rule (validate.ts).
      return {
        kind: "ttu",
        tupleset: expr.tupleset,
        computed: expr.computed,
        ...(expr.all ? { all: true as const } : {}),
      };
    }
    case "exclusion":
      return { kind: "exclusion", base: recurse(expr.left), subtract: recurse(expr.right) };
    default: {
      // Flatten same-operator chains (a + b + c) into one n-ary node.
      const children: Rewrite[] = [];
      // Iteratively: a chain of thousands of `+` is a left-deep tree thousands deep.
      const pending: Expr[] = [expr];
      while (pending.length > 0) {
        const e = pending.pop()!;
        if (e.kind === expr.kind) pending.push(e.right, e.left);
        else children.push(recurse(e));
      }
      return { kind: expr.kind, children };
    }
  }
}

function notFound(at: Position, typeName: string, name: string): NexusError {
  return syntaxError(at, `"${name}" is not a relation or permission of "${typeName}"`, {
    type: typeName,
    relation: name,
  });
}

/**
 * Compiles a SpiceDB schema to a Program.
 * @throws NexusError "invalid_model" for syntax errors and references to missing definitions, relations or caveats;
 *   the message starts with `SpiceDB schema <line>:<column>:` and `details` holds line, column and the name.
 */
export function compileSpiceDb(schema: string, limits: ModelLimits = DEFAULT_MODEL_LIMITS): Program {
  if (typeof schema !== "string") {
    throw new NexusError("invalid_model", "a SpiceDB schema must be a string");
  }
  const parsed = new Parser(new Lexer(schema), limits.maxNestingDepth).parseSchema();
  if (parsed.definitions.length === 0) {
    throw new NexusError("invalid_model", "SpiceDB schema defines no definitions");
  }
  return validateProgram(resolve(parsed));
}
