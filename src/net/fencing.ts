// Fencing headers: every peer request names the sender's cluster (name + fingerprint), node id and
// generation, and its remaining deadline. The receiver refuses requests from another cluster and from
// a generation of a node older than one it has already heard from (that process is gone: DESIGN §2).
import { timingSafeEqual } from "node:crypto";
import { CairnError } from "../observability/errors.ts";

export const HEADER_CLUSTER = "x-cairn-cluster";
export const HEADER_FINGERPRINT = "x-cairn-fingerprint";
export const HEADER_NODE = "x-cairn-node";
export const HEADER_GENERATION = "x-cairn-generation";
export const HEADER_DEADLINE_MS = "x-cairn-deadline-ms";
export const HEADER_SECRET = "x-cairn-secret";

/** What a node knows of its cluster. `fingerprint` is null until the cluster is provisioned. */
export interface ClusterIdentity {
  readonly clusterName: string;
  readonly fingerprint: string | null;
  /** `net.cluster-secret`: when set, sent with every request and required of every request. */
  readonly secret?: string;
  /** Whether an operator removed node `N<id>` from the cluster (its requests are refused). */
  readonly removed?: (node: string) => boolean;
}

/** What a sending node says about itself. `nodeId` (`N<id>`) is null until the node is registered. */
export interface SenderIdentity extends ClusterIdentity {
  readonly nodeId: string | null;
  /** Grows on every process start. */
  readonly generation: number;
}

/** The sender of a request as the handler sees it. */
export interface PeerRef {
  /** `N<id>`, or null when the sender is not registered yet. */
  readonly node: string | null;
  readonly generation: number;
}

export interface FencingHeaders {
  readonly clusterName: string;
  /** "" when the sender is not provisioned. */
  readonly fingerprint: string;
  readonly from: PeerRef;
  readonly deadlineMs: number;
  /** The sender's cluster secret ("" when it sent none). */
  readonly secret: string;
}

const NODE_ID = /^N[0-9]{1,9}$/;

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
const UNSIGNED = /^[0-9]{1,15}$/;

/** The headers a sender puts on each request. */
export function fencingHeaders(identity: SenderIdentity, deadlineMs: number): Record<string, string> {
  return {
    [HEADER_CLUSTER]: identity.clusterName,
    [HEADER_FINGERPRINT]: identity.fingerprint ?? "",
    [HEADER_NODE]: identity.nodeId ?? "",
    [HEADER_GENERATION]: String(identity.generation),
    [HEADER_DEADLINE_MS]: String(deadlineMs),
    ...(identity.secret ? { [HEADER_SECRET]: identity.secret } : {}),
  };
}

/** Reads and checks the syntax of the fencing headers; throws NET_MISSING_HEADERS. */
export function parseFencingHeaders(header: (name: string) => string | undefined): FencingHeaders {
  const clusterName = header(HEADER_CLUSTER);
  const fingerprint = header(HEADER_FINGERPRINT);
  const node = header(HEADER_NODE);
  const generation = header(HEADER_GENERATION);
  const deadline = header(HEADER_DEADLINE_MS);
  if (clusterName === undefined || fingerprint === undefined || node === undefined || generation === undefined || deadline === undefined) {
    const missing = [
      [HEADER_CLUSTER, clusterName],
      [HEADER_FINGERPRINT, fingerprint],
      [HEADER_NODE, node],
      [HEADER_GENERATION, generation],
      [HEADER_DEADLINE_MS, deadline],
    ]
      .filter(([, v]) => v === undefined)
      .map(([k]) => k);
    throw new CairnError("NET_MISSING_HEADERS", `peer request lacks ${missing.join(", ")}`, { missing });
  }
  if (clusterName === "") throw new CairnError("NET_MISSING_HEADERS", `${HEADER_CLUSTER} is empty`);
  if (node !== "" && !NODE_ID.test(node)) throw new CairnError("NET_MISSING_HEADERS", `${HEADER_NODE} "${node}" is not a node id like N3`);
  if (!UNSIGNED.test(generation)) throw new CairnError("NET_MISSING_HEADERS", `${HEADER_GENERATION} "${generation}" is not a non-negative integer`);
  if (!UNSIGNED.test(deadline)) throw new CairnError("NET_MISSING_HEADERS", `${HEADER_DEADLINE_MS} "${deadline}" is not a non-negative integer`);
  return {
    clusterName,
    fingerprint,
    from: { node: node === "" ? null : node, generation: Number(generation) },
    deadlineMs: Number(deadline),
    secret: header(HEADER_SECRET) ?? "",
  };
}

/** Refuses a request from another cluster. Fingerprints are compared only when both sides have one. */
export function checkCluster(own: ClusterIdentity, request: FencingHeaders): void {
  if (own.secret && !sameSecret(own.secret, request.secret)) {
    throw new CairnError("NET_UNAUTHORIZED", request.secret === "" ? "peer request without the cluster secret" : "peer request with a wrong cluster secret");
  }
  if (request.clusterName !== own.clusterName) {
    throw new CairnError("NET_CLUSTER_MISMATCH", `request for cluster "${request.clusterName}" reached a node of cluster "${own.clusterName}"`, {
      expectedCluster: own.clusterName,
      receivedCluster: request.clusterName,
    });
  }
  if (request.from.node !== null && own.removed?.(request.from.node) === true) {
    throw new CairnError("NODE_REMOVED", `node ${request.from.node} was removed from cluster "${own.clusterName}" by an operator; its peers refuse its requests`, {
      node: request.from.node,
    });
  }
  if (own.fingerprint !== null && own.fingerprint !== "" && request.fingerprint !== "" && request.fingerprint !== own.fingerprint) {
    throw new CairnError(
      "NET_CLUSTER_MISMATCH",
      `request from another incarnation of cluster "${own.clusterName}" (fingerprint ${request.fingerprint}, this node has ${own.fingerprint})`,
      { expectedCluster: own.clusterName, receivedCluster: request.clusterName },
    );
  }
}

/**
 * The highest generation seen per node. `admit` refuses older generations and reports newer ones,
 * so the owner can fence whatever the previous generation held. Bounded by the number of node ids.
 */
export class GenerationFence {
  private readonly highest = new Map<string, number>();

  /** Throws NET_STALE_GENERATION; returns the previous highest generation when `from` is newer. */
  admit(from: PeerRef): { newer: boolean; previous: number | undefined } {
    if (from.node === null) return { newer: false, previous: undefined };
    const previous = this.highest.get(from.node);
    if (previous !== undefined && from.generation < previous) {
      throw new CairnError("NET_STALE_GENERATION", `request from ${from.node}:${from.generation}, but ${from.node}:${previous} has been seen`, {
        node: from.node,
        generation: from.generation,
        highestGeneration: previous,
      });
    }
    if (previous === undefined || from.generation > previous) {
      this.highest.set(from.node, from.generation);
      return { newer: true, previous };
    }
    return { newer: false, previous };
  }

  highestGeneration(node: string): number | undefined {
    return this.highest.get(node);
  }
}
