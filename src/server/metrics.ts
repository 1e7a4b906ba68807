/**
 * Prometheus metrics (prom-client, on a registry of the server's own so two servers in one process do not mix):
 * requests by endpoint, method and status, a latency histogram per endpoint, and at scrape time the cache layers'
 * counters summed over the open engines (`engine.stats()`), with each layer's hit ratio. Engine counters restart
 * when an engine is closed and re-created, so they are gauges of the open engines, not counters.
 */
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { EngineStats } from "../engine/engine.js";

export interface MetricsSources {
  /** The open engines' counters. */
  readonly engineStats: () => Promise<EngineStats[]>;
  /** Open engines and engines created since start. */
  readonly engines: () => { open: number; created: number };
  /** Requests being served now. */
  readonly inFlight: () => number;
}

export class ServerMetrics {
  readonly registry = new Registry();
  readonly #requests: Counter<"endpoint" | "method" | "status">;
  readonly #duration: Histogram<"endpoint">;
  readonly #engineStats: () => Promise<EngineStats[]>;
  #layers = new Map<string, { requests: number; hits: number }>();

  constructor(sources: MetricsSources) {
    this.#engineStats = sources.engineStats;
    const registers = [this.registry];
    this.#requests = new Counter({
      name: "nexus_http_requests_total",
      help: "HTTP requests answered, by endpoint (route template), method and status",
      labelNames: ["endpoint", "method", "status"],
      registers,
    });
    this.#duration = new Histogram({
      name: "nexus_http_request_duration_seconds",
      help: "Time from request received to response sent, by endpoint (route template)",
      labelNames: ["endpoint"],
      buckets: [
        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
      ],
      registers,
    });
    new Gauge({
      name: "nexus_http_requests_in_flight",
      help: "Requests being served",
      registers,
      collect() {
        this.set(sources.inFlight());
      },
    });
    new Gauge({
      name: "nexus_engines",
      help: "Engines (one per model version in use): open now, and created since start",
      labelNames: ["state"],
      registers,
      collect() {
        const { open, created } = sources.engines();
        this.set({ state: "open" }, open);
        this.set({ state: "created" }, created);
      },
    });
    // The cache layers' counters, summed over open engines: read once per scrape by text(), before collecting.
    const layers = (): Map<string, { requests: number; hits: number }> => this.#layers;
    new Gauge({
      name: "nexus_cache_layer_requests",
      help: "Questions that reached each check-chain layer, summed over open engines",
      labelNames: ["layer"],
      registers,
      collect() {
        this.reset();
        for (const [layer, sum] of layers()) this.set({ layer }, sum.requests);
      },
    });
    new Gauge({
      name: "nexus_cache_layer_hits",
      help: "Questions each check-chain layer answered itself (cache hits), summed over open engines",
      labelNames: ["layer"],
      registers,
      collect() {
        this.reset();
        for (const [layer, sum] of layers()) this.set({ layer }, sum.hits);
      },
    });
    new Gauge({
      name: "nexus_cache_layer_hit_ratio",
      help: "hits / requests of each check-chain layer over open engines",
      labelNames: ["layer"],
      registers,
      collect() {
        this.reset();
        for (const [layer, sum] of layers())
          this.set({ layer }, sum.requests === 0 ? 0 : sum.hits / sum.requests);
      },
    });
  }

  /** Records one answered request. */
  observe(endpoint: string, method: string, status: number, seconds: number): void {
    this.#requests.inc({ endpoint, method, status: String(status) });
    this.#duration.observe({ endpoint }, seconds);
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The exposition text (engine counters read now). */
  async text(): Promise<string> {
    const layers = new Map<string, { requests: number; hits: number }>();
    for (const stats of await this.#engineStats()) {
      for (const layer of stats.chain?.layers ?? []) {
        const sum = layers.get(layer.layer) ?? { requests: 0, hits: 0 };
        sum.requests += layer.requests;
        sum.hits += layer.hits;
        layers.set(layer.layer, sum);
      }
    }
    this.#layers = layers;
    return this.registry.metrics();
  }
}
