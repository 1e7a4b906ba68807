/**
 * nexus-fast: the root entry. Browser- and edge-safe: nothing reachable from here imports a `node:` module.
 * Node-only pieces live behind `nexus-fast/node` and `nexus-fast/storage`.
 */

export { ChangeFeed, type ChangeListener, influenceOf } from "./changes/index.js";
export {
  type ConformanceFailure,
  type ConformanceOptions,
  type ConformanceReport,
  type MatrixFile,
  runConformanceFile,
} from "./conformance/runner.js";
export { type EngineFactory, openFgaErrorCodes, type TestableEngine } from "./conformance/shared.js";
export {
  runStoreTest,
  type StoreAssertionResult,
  type StoreTestCaseResult,
  type StoreTestOptions,
  type StoreTestReport,
} from "./conformance/store-test.js";
export {
  type BatchCheckError,
  type BatchCheckItem,
  type BatchCheckOptions,
  type BatchCheckRequest,
  type BatchCheckResponse,
  type BatchCheckSingleResponse,
  type Change,
  type CheckRequest,
  type Consistency,
  createEngine,
  Engine,
  type EngineCacheOptions,
  type EngineOptions,
  type EngineStats,
  type ExpandRequest,
  type ForeignSubject,
  type GrantQueries,
  type ListObjectsPage,
  type ListObjectsRequest,
  type ListUsersPage,
  type ListUsersRequest,
  type PageRequest,
  type PermissionChange,
  type PermissionRevision,
  type PermissionWatchRequest,
  type ReadPage,
  type ReadRequest,
  type TupleToDelete,
  type UserFilter,
  type UsersetLeaf,
  type UsersetNode,
  type UsersetTree,
  type WatchRequest,
  type WriteRequest,
  type WriteResponse,
} from "./engine/engine.js";
export { BloomFilter, type BloomKey, type BloomPlan, planBloomFilter } from "./kernels/bloom.js";
export { ReedSolomon, type ReedSolomonOptions } from "./kernels/erasure.js";
export {
  Interner,
  type InternerOptions,
  type InternKernel,
  type InternKernelExports,
  type MemoArity,
  MemoTable,
  type MemoTableOptions,
} from "./kernels/intern.js";
export {
  compileModel,
  compileModelAsync,
  compileNexus,
  compileOpenFga,
  compileSpiceDb,
  DEFAULT_MODEL_LIMITS,
  detectFormat,
  isConditionsLoaded,
  isOpenFgaDslLoaded,
  loadConditions,
  loadOpenFgaDsl,
  type ModelLimits,
  type NexusNamespaceConfig,
  type NexusNamespaces,
  type NexusPermissionConfig,
  type NexusRelationConfig,
  nexusFilesystemModel,
  type OpenFgaModules,
} from "./model/index.js";
export type { ModelFormat, Program } from "./model/program.js";
export {
  getParallelThreshold,
  type ParallelOperation,
  resetParallelThresholds,
  setParallelThreshold,
} from "./parallel/thresholds.js";
export {
  type ChainStats,
  CheckChain,
  type CheckChainOptions,
  type CheckOptions,
  type CheckResolver,
  type CrossTenantOptions,
  CrossTenantResolver,
  type FilterRequest,
  type GrantsOnQuery,
  type GrantsToQuery,
  type LayerStats,
  type Resolution,
  type ResolvedCheck,
  type TigerOptions,
  Warmer,
  type WarmerOptions,
  type WarmerStats,
  type WarmingOptions,
} from "./pipeline/index.js";
export type { DetailedCheckResult } from "./reference/detailed.js";
export { type MemoryStoreOptions, MemoryTupleStore } from "./tuples/memory.js";
export {
  DEFAULT_TENANT,
  type RelationTuple,
  type Subject,
  type TupleCondition,
  type TupleIdentity,
  type TupleKey,
} from "./tuples/tuple.js";
export type {
  ObjectRelationKey,
  ReadFilter,
  Revision,
  StoredChange,
  SubjectKey,
  TupleSnapshot,
  TupleStore,
  TypeRelationKey,
  WriteBatch,
  WriteResult,
} from "./tuples/types.js";
export { describe, isNexusError, NexusError, type NexusErrorCode } from "./util/errors.js";
export { isReady, ready, simdSupported } from "./wasm/loader.js";
export {
  type RouteReason,
  type WasmAnswer,
  WasmEvaluator,
  type WasmEvaluatorOptions,
  type WasmEvaluatorStats,
} from "./wasm-eval/evaluator.js";
