// Sealing a replicated loglet, as a pure core: ask every log-server of the nodeset to seal it, and
// finish once an f-majority (n − r + 1) answered sealed. From then on no write quorum of r servers
// can form (every set of r servers includes a sealed one), so nothing new can be acknowledged.
//
// Invariants: done is reported at most once and only with ≥ f-majority sealed answers (with
// `requireAuthoritative`, ≥ f-majority answers from servers that did not lose data); failure is
// reported only when so many servers were given up on that the condition can no longer be met.
import type { SealResponse } from "../../logserver/protocol.ts";
import { invariant } from "../../observability/errors.ts";
import type { NodeId } from "../../ids/index.ts";
import { checkParams, fMajoritySize, type ReplicatedLogletParams } from "./params.ts";
import { Outbox, type RequestSink, type CoreReady, type ProtocolCore, type RequestId, type RpcOutcome } from "./requests.ts";
import { NodeRetries, PendingRequests, RETRY_DEFAULTS, type RetryOptions } from "./tracking.ts";

export interface SealOptions extends RetryOptions {
  /** Count only servers that did not lose data (find-tail needs their local tails as evidence). */
  readonly requireAuthoritative: boolean;
}

export const SEAL_DEFAULTS: SealOptions = { ...RETRY_DEFAULTS, requireAuthoritative: false };

export type SealEvent =
  | { readonly kind: "sealed"; readonly responses: ReadonlyMap<NodeId, SealResponse> }
  | { readonly kind: "failed"; readonly reason: string };

/**
 * The seal rounds, reusable inside other cores: it sends through the owner's outbox and the owner
 * routes answers to it. Stops sending once its condition holds.
 */
export class SealRounds {
  readonly responses = new Map<NodeId, SealResponse>();
  /** Each server's last failure (an error, a timeout), so a failed seal can say who failed and how. */
  private readonly lastErrors = new Map<NodeId, string>();
  private readonly retries: NodeRetries;
  private readonly pending = new PendingRequests<NodeId>();
  private readonly needed: number;
  private result: "pending" | "sealed" | "failed" = "pending";

  constructor(
    private readonly params: ReplicatedLogletParams,
    private readonly options: SealOptions,
    private readonly outbox: RequestSink,
  ) {
    this.retries = new NodeRetries(params.nodeset, options);
    this.needed = fMajoritySize(params);
  }

  get status(): "pending" | "sealed" | "failed" {
    return this.result;
  }

  owns(id: RequestId): boolean {
    return this.pending.has(id);
  }

  pump(now: number): void {
    if (this.result !== "pending") return;
    for (const node of this.retries.due(now)) {
      const id = this.outbox.newId();
      this.retries.sent(node);
      this.pending.add(id, node, now + this.options.requestTimeoutTicks);
      this.outbox.send({ id, to: node, rpc: "seal", timeoutTicks: this.options.requestTimeoutTicks, request: { loglet: this.params.loglet } });
    }
  }

  tick(now: number): void {
    for (const node of this.pending.expire(now)) {
      this.retries.failed(node, now);
      this.lastErrors.set(node, "no answer in time");
    }
    this.evaluate();
  }

  receive(id: RequestId, outcome: RpcOutcome, now: number): void {
    const node = this.pending.take(id);
    if (node === undefined) return;
    if (!outcome.ok) {
      this.retries.failed(node, now);
      this.lastErrors.set(node, outcome.error);
    } else {
      invariant(outcome.rpc === "seal", () => `seal got a ${outcome.rpc} answer`);
      invariant(outcome.response.sealed, () => `log-server ${node} answered a seal without being sealed`);
      this.retries.succeeded(node);
      this.responses.set(node, outcome.response);
    }
    this.evaluate();
  }

  private counts(): { counted: number; possible: number } {
    let counted = 0;
    let possible = 0;
    for (const node of this.params.nodeset) {
      const r = this.responses.get(node);
      if (r) {
        if (!this.options.requireAuthoritative || r.authoritative) {
          counted++;
          possible++;
        }
      } else if (this.retries.status(node) !== "gave-up") {
        possible++;
      }
    }
    return { counted, possible };
  }

  private evaluate(): void {
    if (this.result !== "pending") return;
    const { counted, possible } = this.counts();
    if (counted >= this.needed) this.result = "sealed";
    else if (possible < this.needed) this.result = "failed";
  }

  failureReason(): string {
    const { counted } = this.counts();
    const why: string[] = [];
    for (const node of this.params.nodeset) {
      const r = this.responses.get(node);
      if (r !== undefined && this.options.requireAuthoritative && !r.authoritative) why.push(`${node}: sealed but not authoritative (lost data)`);
      else if (r === undefined) why.push(`${node}: ${this.lastErrors.get(node) ?? "no answer yet"}`);
    }
    return `only ${counted} of the ${this.needed} log-servers needed (n=${this.params.nodeset.length}, r=${this.params.replication}${
      this.options.requireAuthoritative ? ", authoritative only" : ""
    }) answered the seal${why.length > 0 ? `; ${why.join("; ")}` : ""}`;
  }
}

/** Seals a loglet: done once an f-majority of the nodeset is sealed. */
export class SealTask implements ProtocolCore<SealEvent> {
  private readonly outbox = new Outbox<SealEvent>();
  private readonly rounds: SealRounds;
  private now = 0;
  private reported = false;

  constructor(params: ReplicatedLogletParams, options: Partial<SealOptions> = {}) {
    checkParams(params);
    this.rounds = new SealRounds(params, { ...SEAL_DEFAULTS, ...options }, this.outbox);
    this.rounds.pump(this.now);
  }

  tick(): void {
    this.now++;
    this.rounds.tick(this.now);
    this.step();
  }

  receive(id: RequestId, outcome: RpcOutcome): void {
    this.rounds.receive(id, outcome, this.now);
    this.step();
  }

  private step(): void {
    if (this.reported) return;
    if (this.rounds.status === "sealed") {
      this.reported = true;
      this.outbox.emit({ kind: "sealed", responses: this.rounds.responses });
    } else if (this.rounds.status === "failed") {
      this.reported = true;
      this.outbox.emit({ kind: "failed", reason: this.rounds.failureReason() });
    } else {
      this.rounds.pump(this.now);
    }
  }

  hasReady(): boolean {
    return this.outbox.hasReady();
  }

  ready(): CoreReady<SealEvent> {
    return this.outbox.ready();
  }

  advance(): void {
    this.outbox.advance();
  }
}
