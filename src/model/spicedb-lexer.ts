/**
 * The SpiceDB schema tokenizer (src/model/spicedb.ts compiles schemas; spicedb-parser.ts reads these tokens): a lazy
 * lexer the parser pulls one token at a time from, so a caveat's CEL body can be read raw, and the one way syntax
 * errors are reported (`SpiceDB schema <line>:<column>: …`, with line and column in `details`).
 */
import { NexusError } from "../util/errors.js";

export type TokenKind =
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

export interface Token {
  readonly kind: TokenKind;
  readonly text: string;
  readonly offset: number;
  readonly line: number;
  readonly column: number;
  /** A line break (or the start of input) separates this token from the previous one. */
  readonly newlineBefore: boolean;
}

export interface Position {
  readonly line: number;
  readonly column: number;
}

export function syntaxError(
  at: Position,
  message: string,
  details: Record<string, unknown> = {},
): NexusError {
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
export class Lexer {
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
