/**
 * A check request as the evaluate kernel reads it: eight 32-bit words (eval_check's arguments after the graph, or
 * one record of eval_check_many, whose last word stays 0) holding the model's type and relation numbers and the
 * interned ids of the object and subject; the layout's numbers come from the kernel's ABI file
 * (src/kernels/abi/evaluate.ts). Apart from the evaluator: turning a request into words is its own concern.
 */

import { evaluateAbi } from "../kernels/abi/evaluate.js";
import type { CheckQuery } from "../reference/check.js";
import { ABSENT, type CompiledProgram, NO_REL } from "./compile.js";
import type { Symbols } from "./symbols.js";

/** Placeholders for a request's object / subject object that no tuple names (never interned symbols). */
const { UNKNOWN_OBJECT, UNKNOWN_SUBJECT } = evaluateAbi.constants;
/** Words per request record of eval_check_many. */
export const RECORD_WORDS = evaluateAbi.constants.REQUEST_WORDS;

/** Word offsets of an encoded request (eval_check's arguments after the graph; eval_check_many's record). */
export const {
  REQUEST_OBJECT: W_OBJECT,
  REQUEST_TYPE: W_TYPE,
  REQUEST_RELATION: W_RELATION,
  REQUEST_SUBJECT: W_SUBJECT,
  REQUEST_SUBJECT_RELATION: W_SUBJECT_RELATION,
  REQUEST_WILDCARD: W_WILDCARD,
  REQUEST_KIND: W_KIND,
  REQUEST_USERSET: W_USERSET,
} = evaluateAbi.constants;

/**
 * Writes the query's 8 words (W_* offsets) into `out` at `at` (a JavaScript array: a symbol lookup may grow
 * kernel memory); false when the model does not know its type or relation. Only Map lookups of the query's own
 * strings and array reads: the object's type from validation's parse or the object's symbol, the wildcard from the
 * subject type.
 */
export function encodeCheck(
  compiled: CompiledProgram,
  symbols: Symbols,
  query: EncodableCheck,
  out: Uint32Array,
  at: number,
): boolean {
  return encodeCheckWith(
    compiled,
    symbols,
    query,
    out,
    at,
    symbols.lookup(query.object),
    symbols.lookupSubject(subjectText(query)),
  );
}

/** The text whose symbol is a query's subject word: the subject's object for a userset, else the user. */
export function subjectText(query: CheckQuery): string {
  const s = query.subject;
  return s.kind === "userset" ? `${s.type}:${s.id}` : query.user;
}

/**
 * A check as encoded: a CheckQuery, with its object's type when validation parsed it (the pipeline's questions).
 * A symbol's type is its text's type (every symbol is interned with the type named before its text's first colon:
 * src/wasm-eval/graph.ts), so a known object's type is a read of that type name, the same string question after
 * question, rather than the symbol's entry in the symbol-type table (as large as the symbols: in a batch of new
 * objects, a cache miss a question), and an object no tuple names needs no slice of its text for its type.
 */
export interface EncodableCheck extends CheckQuery {
  readonly objectType?: string;
}

/**
 * encodeCheck with the object's and the subject's symbols already looked up (`symbols.lookup(query.object)` and
 * `symbols.lookup(subjectText(query))`, undefined for a text never interned): a batch looks them all up in one
 * kernel call (Symbols.lookupMany) first.
 */
export function encodeCheckWith(
  compiled: CompiledProgram,
  symbols: Symbols,
  query: EncodableCheck,
  out: Uint32Array,
  at: number,
  objectSymbol: number | undefined,
  subjectSymbol: number | undefined,
): boolean {
  const { typeIds, relationIds, rids } = compiled;
  const relation = relationIds.get(query.relation);
  const s = query.subject;
  const subjectType = typeIds.get(s.type);
  if (relation === undefined || subjectType === undefined) return false;
  let object = objectSymbol;
  const objectType = query.objectType;
  let type = objectType === undefined ? undefined : typeIds.get(objectType);
  if (object === undefined) {
    object = UNKNOWN_OBJECT;
    type ??= typeIds.get(query.object.slice(0, query.object.indexOf(":")));
    if (type === undefined) return false;
  } else {
    type ??= symbols.typeOf(object);
  }
  out[at + W_OBJECT] = object;
  out[at + W_TYPE] = type;
  out[at + W_RELATION] = relation;
  if (s.kind === "userset") {
    const subjectRelation = relationIds.get(s.relation);
    const rid = rids.get(`${s.type}#${s.relation}`);
    if (subjectRelation === undefined || rid === undefined) return false;
    out[at + W_SUBJECT] = subjectSymbol ?? (subjectText(query) === query.object ? object : UNKNOWN_SUBJECT);
    out[at + W_SUBJECT_RELATION] = subjectRelation;
    out[at + W_WILDCARD] = ABSENT;
    out[at + W_KIND] = typeIds.size + rid;
    out[at + W_USERSET] = 1;
    return true;
  }
  const subject = subjectSymbol ?? (query.user === query.object ? object : UNKNOWN_SUBJECT);
  out[at + W_SUBJECT] = subject;
  out[at + W_SUBJECT_RELATION] = NO_REL;
  out[at + W_WILDCARD] =
    s.kind === "wildcard"
      ? subject === UNKNOWN_SUBJECT
        ? ABSENT
        : subject
      : symbols.wildcardOf(subjectType);
  out[at + W_KIND] = subjectType;
  out[at + W_USERSET] = 0;
  return true;
}
