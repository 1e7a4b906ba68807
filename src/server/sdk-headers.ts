/**
 * The request headers the OpenFGA SDKs send: CORS preflights allow them, and a cluster member forwarding a request
 * to its owner passes them on (authentication, the body's type, the SDK's method and bulk ids, trace context).
 */
export const SDK_HEADERS: readonly string[] = [
  "authorization",
  "content-type",
  "x-openfga-client-method",
  "x-openfga-client-bulk-request-id",
  "traceparent",
  "tracestate",
];
