/**
 * OpenFGA's DSL tooling (@openfga/syntax-transformer, with its ANTLR runtime: about 360 KiB of a minified browser
 * bundle, a third of the root entry) is loaded on first need, behind dynamic imports. A bundler then puts it in
 * chunks of its own, fetched only by an app that hands over DSL text or an fga.mod; JSON models, SpiceDB schemas
 * and Nexus configs never load it.
 *
 * Only the package's files nexus-fast calls are imported, not its index: the index also loads its store-file
 * validator (ajv, which compiles JSON schemas as it loads) and its JSON-to-DSL printer, neither used here. In a
 * fresh Node 20 process on the 2-core bench machine the index took 86–93 ms to load, these files 37–40 ms (six
 * runs each), a cold start's largest part after the kernels. The fga.mod parser brings a YAML library (another
 * ~25 ms): it is a part of its own, loaded only for modular models.
 *
 * The async paths (createEngine, compileModelAsync) load what the model needs. The synchronous compilers use the
 * parts once loaded (`await loadOpenFgaDsl()` loads both), and otherwise fail with "not_ready", the same contract
 * the kernels have with ready().
 */
import { OnDemand } from "../util/on-demand.js";

type DslToJson = typeof import("@openfga/syntax-transformer/dist/transformer/dsltojson.js");
type ValidateDsl = typeof import("@openfga/syntax-transformer/dist/validator/validate-dsl.js");
type ModulesToModel =
  typeof import("@openfga/syntax-transformer/dist/transformer/modules/modules-to-model.js");
type ModToJson = typeof import("@openfga/syntax-transformer/dist/transformer/modules/mod-to-json.js");

/** The DSL parser and validator, and the module-file merger (it needs nothing the parser does not). */
export interface OpenFgaDsl {
  readonly parseDSL: DslToJson["parseDSL"];
  readonly validateJSON: ValidateDsl["validateJSON"];
  readonly transformModuleFilesToModel: ModulesToModel["transformModuleFilesToModel"];
  readonly errors: typeof import("@openfga/syntax-transformer/dist/errors.js");
}

const NOT_READY =
  "OpenFGA DSL needs its parser, which loads on demand: use createEngine or compileModelAsync, or await loadOpenFgaDsl() before compiling DSL synchronously (OpenFGA JSON, SpiceDB and Nexus models need nothing)";

const parser = new OnDemand<OpenFgaDsl>(
  async () => {
    const [toJson, validate, modules, errors] = await Promise.all([
      import("@openfga/syntax-transformer/dist/transformer/dsltojson.js"),
      import("@openfga/syntax-transformer/dist/validator/validate-dsl.js"),
      import("@openfga/syntax-transformer/dist/transformer/modules/modules-to-model.js"),
      import("@openfga/syntax-transformer/dist/errors.js"),
    ]);
    return {
      parseDSL: toJson.parseDSL,
      validateJSON: validate.validateJSON,
      transformModuleFilesToModel: modules.transformModuleFilesToModel,
      errors,
    };
  },
  "the OpenFGA DSL parser",
  NOT_READY,
);

const modFile = new OnDemand<ModToJson>(
  () => import("@openfga/syntax-transformer/dist/transformer/modules/mod-to-json.js"),
  "the OpenFGA fga.mod parser",
  NOT_READY.replace("DSL needs its parser", "modular models need the fga.mod parser"),
);

/**
 * Loads OpenFGA's DSL tooling: the parser and validator, and the fga.mod parser of modular models. Safe to call
 * many times and concurrently.
 */
export function loadOpenFgaDsl(): Promise<void> {
  return Promise.all([parser.load(), modFile.load()]).then(() => undefined);
}

/** Loads the DSL parser and validator alone: what DSL text needs (a modular model needs loadOpenFgaDsl). */
export function loadOpenFgaDslParser(): Promise<void> {
  return parser.load();
}

/** Whether the DSL parser is loaded (synchronous compiles of DSL text work). */
export function isOpenFgaDslLoaded(): boolean {
  return parser.loaded;
}

/**
 * The loaded DSL parser and validator.
 * @throws NexusError "not_ready" before it has loaded, naming the async ways in.
 */
export function openFgaDsl(): OpenFgaDsl {
  return parser.get();
}

/**
 * The loaded fga.mod parser.
 * @throws NexusError "not_ready" before loadOpenFgaDsl() has settled, naming the async ways in.
 */
export function fgaModParser(): ModToJson {
  return modFile.get();
}
