/**
 * The SpiceDB schema parser: recursive descent over spicedb-lexer.ts's tokens into a syntax tree of definitions,
 * caveats and permission expressions (names not resolved yet: src/model/spicedb.ts does that and lowers the tree
 * to a Program). Precedence follows SpiceDB's parser: `+` binds tightest, then `&`, then `-`; all are
 * left-associative. A caveat's CEL body is kept verbatim after a syntax check, and every parameter must be used.
 */
import { celJs } from "../conditions/cel-js.js";
import { NexusError } from "../util/errors.js";
import { DEFAULT_MODEL_LIMITS } from "./limits.js";
import type { ConditionParamType } from "./program.js";
import { type Lexer, type Position, syntaxError, type Token, type TokenKind } from "./spicedb-lexer.js";

// ---------------------------------------------------------------------------------------------------------------
// Syntax tree

export type Expr =
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

export interface AllowedType {
  readonly type: string;
  readonly relation?: string;
  readonly wildcard?: boolean;
  readonly caveat?: string;
  readonly expiration: boolean;
  readonly at: Position;
}

export type Member =
  | {
      readonly kind: "relation";
      readonly name: string;
      readonly types: readonly AllowedType[];
      readonly at: Position;
    }
  | { readonly kind: "permission"; readonly name: string; readonly expr: Expr; readonly at: Position };

export interface Definition {
  readonly name: string;
  readonly members: readonly Member[];
  readonly at: Position;
}

export interface Caveat {
  readonly name: string;
  readonly parameters: ReadonlyMap<string, ConditionParamType>;
  readonly expression: string;
  readonly at: Position;
}

export interface Schema {
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

export class Parser {
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
    // Outside the try: a runtime not loaded is "not_ready", not an invalid expression.
    const cel = celJs();
    let ast: unknown;
    try {
      ast = cel.parse(expression).ast;
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
