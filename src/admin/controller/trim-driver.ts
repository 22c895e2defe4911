// Applies the trim policy (trim-policy.ts) on the metadata leader: every `interval-ms` it reads the
// nodes configuration, the policy's durable state, the logs, the processors' durable LSNs (the
// partitions overview, over the fabric) and the archived indexes, asks the pure core, then trims.
// Invariants: before persisted-lsn trims a log, the point is recorded in `trim/persisted-lsn-used`
// (a join is refused on it) and the nodes configuration is rewritten by compare-and-set while it has
// one node (so a concurrent registration either sees the record or is seen): otherwise no trim;
// switching persisted-lsn off is durable (`trim/state`) before anything else happens in the round.
import type { Bifrost, NodeDirectory } from "../../bifrost/index.ts";
import type { TrimConfig } from "../../config/index.ts";
import { logId, lsn, type NodeId } from "../../ids/index.ts";
import type { MetadataApi } from "../../metadata/api.ts";
import { DOES_NOT_EXIST, matchesVersion, asVersion } from "../../metadata/kv.ts";
import { KEYS, type NodesConfiguration } from "../../metadata/nodes-config.ts";
import type { FabricClient } from "../../net/index.ts";
import { ERRORS, isCairnError } from "../../observability/errors.ts";
import type { Logger } from "../../observability/log.ts";
import { Counter, Gauge, type Registry } from "../../observability/metrics.ts";
import { partitionsOverview, type PartitionOverview, type WorkerRole } from "../../worker/index.ts";
import { archivedLsnOf, PERSISTED_LSN_USED_KEY, readArchivedIndex, readPersistedLsnUsed, readTrimState, TRIM_STATE_KEY, type TrimState } from "./trim-inputs.ts";
import { decideTrims, resolveTrimPolicy, type Candidate, type EffectiveTrimPolicy, type LogTrimInput } from "./trim-policy.ts";

export interface TrimDriverDeps {
  readonly config: TrimConfig;
  /** A snapshot repository is configured on this node. */
  readonly repository: boolean;
  readonly isLeader: () => boolean;
  readonly metadata: () => MetadataApi | undefined;
  readonly bifrost: Bifrost;
  readonly directory: NodeDirectory;
  readonly fabricClient: FabricClient;
  readonly self: () => NodeId | undefined;
  readonly localWorker: () => WorkerRole | undefined;
  readonly registry?: Registry | undefined;
  readonly logger: Logger;
  readonly nowMs?: () => number;
}

/** Deadline of each worker's status and each log's tail while gathering durable LSNs. */
const OVERVIEW_DEADLINE_MS = 2_000;
const EFFECTIVE: readonly EffectiveTrimPolicy[] = ["archived-lsn", "persisted-lsn", "off"];

export class TrimDriver {
  private timer: ReturnType<typeof setInterval> | undefined;
  private running: Promise<void> | undefined;
  private candidates: ReadonlyMap<number, Candidate> = new Map();
  private readonly nowMs: () => number;
  private readonly policyGauge: Gauge<"policy"> | undefined;
  private readonly pointGauge: Gauge<"log"> | undefined;
  private readonly applied: Counter<"policy"> | undefined;
  private readonly rounds: Counter | undefined;
  private stopped = false;

  constructor(private readonly deps: TrimDriverDeps) {
    this.nowMs = deps.nowMs ?? Date.now;
    const registers = deps.registry === undefined ? undefined : [deps.registry];
    if (registers !== undefined) {
      this.policyGauge = new Gauge({ name: "cairn_trim_policy", help: "1 for the trim policy in force on the metadata leader, 0 for the others", labelNames: ["policy"], registers });
      this.pointGauge = new Gauge({ name: "cairn_trim_policy_point", help: "The last trim point the trim policy applied, per log", labelNames: ["log"], registers });
      this.applied = new Counter({ name: "cairn_trim_applied_total", help: "Trims the trim policy applied", labelNames: ["policy"], registers });
      this.rounds = new Counter({ name: "cairn_trim_rounds_total", help: "Trim policy evaluations completed on this node (as metadata leader)", registers });
    }
  }

  /** Runs with every policy, `off` included: its state (no warnings) replaces an earlier one. */
  start(): void {
    if (this.timer !== undefined) return;
    this.stopped = false;
    this.timer = setInterval(() => {
      this.running ??= this.round().finally(() => (this.running = undefined));
    }, this.deps.config["interval-ms"]);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /** One evaluation (tests call it directly). Failures are logged and retried next round. */
  async round(): Promise<void> {
    if (!this.deps.isLeader()) {
      this.candidates = new Map();
      return;
    }
    const api = this.deps.metadata();
    if (api === undefined) return;
    try {
      await this.evaluate(api);
      this.rounds?.inc();
    } catch (e) {
      this.deps.logger.warn({ err: e }, "trim policy round failed; retrying next round");
    }
  }

  private async evaluate(api: MetadataApi): Promise<void> {
    const nodesConfig = await readNodes(api);
    const [state, used] = await Promise.all([readTrimState(api), readPersistedLsnUsed(api)]);
    const decision = resolveTrimPolicy({
      configured: this.deps.config.policy,
      repository: this.deps.repository,
      nodes: nodesConfig.nodes.length,
      workers: nodesConfig.nodes.filter((n) => n.roles.includes("worker")).length,
      persistedLsnDisabled: state.value?.persistedLsnDisabled ?? false,
      persistedLsnTrimmed: used.value !== undefined,
    });
    const next: TrimState = {
      policy: decision.effective,
      persistedLsnDisabled: (state.value?.persistedLsnDisabled ?? false) || decision.disablePersistedLsn,
      warnings: [...decision.warnings],
    };
    if (decision.disablePersistedLsn) {
      // A warning when it matters (chosen by the operator, or it trimmed); under `auto` before any
      // trim, a note: every cluster that grows from its first node passes here.
      const shown = decision.warnings.some((w) => w.code === ERRORS.TRIM_PERSISTED_LSN_DISABLED.code);
      const fields = { code: ERRORS.TRIM_PERSISTED_LSN_DISABLED.code, nodes: nodesConfig.nodes.length };
      const text = "a second node registered: the persisted-lsn trim policy turns itself off (nothing already trimmed is lost; no more trims under it)";
      if (shown) this.deps.logger.warn(fields, text);
      else this.deps.logger.info(fields, text);
    }
    // A cluster with nothing to report and no history keeps no state (no write on every start).
    const nothingToKeep = state.value === undefined && !next.persistedLsnDisabled && next.warnings.length === 0;
    if (!nothingToKeep && JSON.stringify(next) !== JSON.stringify(state.value)) {
      // The switch-off must be durable before this round goes on (a new leader must not resume it).
      await api.put(TRIM_STATE_KEY, next, state.version === 0 ? DOES_NOT_EXIST : matchesVersion(asVersion(state.version)));
    }
    for (const p of EFFECTIVE) this.policyGauge?.set({ policy: p }, p === decision.effective ? 1 : 0);
    if (decision.effective === "off" || this.stopped) {
      this.candidates = new Map();
      return;
    }
    const logs = await this.gather(api, decision.effective);
    const c = this.deps.config;
    const round = decideTrims({
      effective: decision.effective,
      window: { minAgeMs: c["min-age-ms"], minRecords: c["min-records"], delayMs: c["delay-ms"] },
      nowMs: this.nowMs(),
      logs,
      candidates: this.candidates,
    });
    this.candidates = round.candidates;
    const trims = round.decisions.flatMap((d) => (d.action === "trim" ? [{ log: d.log, upTo: d.upTo }] : []));
    if (trims.length === 0 || this.stopped) return;
    if (decision.effective === "persisted-lsn" && !(await this.mayTrimPersisted(api, trims))) {
      this.candidates = new Map();
      return;
    }
    for (const t of trims) {
      if (this.stopped) return;
      const r = await this.deps.bifrost.trim(logId(t.log), lsn(t.upTo));
      this.applied?.inc({ policy: decision.effective });
      this.pointGauge?.set({ log: String(t.log) }, r.trimPoint);
      this.deps.logger.info({ log: t.log, trimPoint: r.trimPoint, policy: decision.effective }, "trimmed a log");
    }
  }

  /** Per partition log: its age, trim point, tail, archived LSN and processors' durable LSNs. */
  private async gather(api: MetadataApi, effective: EffectiveTrimPolicy): Promise<LogTrimInput[]> {
    const [{ doc }, overview] = await Promise.all([
      this.deps.bifrost.logsDocument(true),
      partitionsOverview({
        metadata: api,
        bifrost: this.deps.bifrost,
        directory: this.deps.directory,
        fabricClient: this.deps.fabricClient,
        self: this.deps.self(),
        localWorker: this.deps.localWorker(),
        deadlineMs: OVERVIEW_DEADLINE_MS,
      }),
    ]);
    const chains = new Map(doc.logs.map((l) => [l.id, l]));
    return Promise.all(
      overview.map(async (p): Promise<LogTrimInput> => {
        const chain = chains.get(p.id);
        const created = chain === undefined || chain.segments.length === 0 ? null : Math.min(...chain.segments.map((s) => s.createdAtMs));
        return {
          log: p.id,
          createdAtMs: created,
          trimPoint: chain?.trimPoint ?? 0,
          tailLsn: p.tailLsn,
          archivedLsn: effective === "archived-lsn" ? archivedLsnOf(await readArchivedIndex(api, p.id)) : null,
          durableLsns: effective === "persisted-lsn" ? durableLsns(p) : null,
        };
      }),
    );
  }

  /**
   * Records the points persisted-lsn is about to trim to (a join is refused on them), then rewrites
   * the nodes configuration unchanged, by compare-and-set, while it still has one node. A node
   * registering concurrently read the configuration before its own compare-and-set: either that
   * write fails and its retry sees the record, or it happened first and this one finds two nodes.
   */
  private async mayTrimPersisted(api: MetadataApi, trims: ReadonlyArray<{ log: number; upTo: number }>): Promise<boolean> {
    for (let attempt = 0; ; attempt++) {
      const used = await readPersistedLsnUsed(api);
      const value = used.value ?? { logs: {}, firstAtMs: this.nowMs() };
      const logs = { ...value.logs };
      for (const t of trims) logs[String(t.log)] = Math.max(logs[String(t.log)] ?? 0, t.upTo);
      if (JSON.stringify(logs) === JSON.stringify(value.logs) && used.value !== undefined) break;
      try {
        await api.put(PERSISTED_LSN_USED_KEY, { ...value, logs }, used.version === 0 ? DOES_NOT_EXIST : matchesVersion(asVersion(used.version)));
        break;
      } catch (e) {
        if (!isCairnError(e, "METADATA_VERSION_MISMATCH") || attempt >= 4) throw e;
      }
    }
    const current = await api.get(KEYS.nodesConfig);
    const nodes = (current?.value as NodesConfiguration | undefined)?.nodes.length ?? 0;
    if (current === undefined || nodes > 1) {
      this.deps.logger.warn({ nodes }, "a node registered while persisted-lsn was about to trim: no trim; the policy turns itself off next round");
      return false;
    }
    try {
      await api.put(KEYS.nodesConfig, current.value, matchesVersion(current.version));
    } catch (e) {
      if (isCairnError(e, "METADATA_VERSION_MISMATCH")) return false; // changed meanwhile: decide again next round
      throw e;
    }
    return true;
  }
}

async function readNodes(api: MetadataApi): Promise<NodesConfiguration> {
  const v = await api.get(KEYS.nodesConfig);
  if (v === undefined) return { clusterName: "", fingerprint: "", nextNodeId: 1, nodes: [] };
  return v.value as NodesConfiguration;
}

/** Durable LSNs of every processor the placement names and of any other still reporting; null when a placed one is silent. */
function durableLsns(p: PartitionOverview): number[] | null {
  const placed = [p.leader, ...p.followers].filter((n): n is string => n !== null);
  if (placed.length === 0) return null;
  if (placed.some((n) => !p.replicas.some((r) => r.node === n))) return null;
  return p.replicas.map((r) => r.durableLsn);
}
