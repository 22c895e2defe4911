// Node identity, one type for every role: a node's stable id `N<number>` (assigned when it first
// registers, never reused) and a generational id `N<number>:<generation>` (one process start; a
// restarted node is a different identity and must be fenced).
import { invariant } from "../observability/errors.ts";
import type { Brand } from "./brand.ts";

/** A node's stable id, `"N<number>"`. */
export type NodeId = Brand<string, "NodeId">;

/** A node at one start: a restarted node is a different identity and must be fenced. */
export interface GenerationalNodeId {
  readonly id: NodeId;
  readonly generation: number;
}

const NODE_ID_PATTERN = /^N(0|[1-9]\d*)$/;

export function nodeId(n: number | string): NodeId {
  const text = typeof n === "number" ? `N${n}` : n;
  invariant(NODE_ID_PATTERN.test(text), () => `node id must look like "N<number>", got "${text}"`);
  return text as NodeId;
}

export function generationalNodeId(id: NodeId | number, generation: number): GenerationalNodeId {
  invariant(Number.isSafeInteger(generation) && generation >= 0, () => `generation must be a non-negative integer, got ${generation}`);
  return { id: nodeId(id), generation };
}

/** `"N3:5"`. */
export function formatGenerationalNodeId(g: GenerationalNodeId): string {
  return `${g.id}:${g.generation}`;
}

export function parseGenerationalNodeId(text: string): GenerationalNodeId | undefined {
  const m = /^(N(?:0|[1-9]\d*)):(0|[1-9]\d*)$/.exec(text);
  if (!m) return undefined;
  const generation = Number(m[2]);
  if (!Number.isSafeInteger(generation)) return undefined;
  return { id: m[1] as NodeId, generation };
}

export function sameGenerationalNodeId(a: GenerationalNodeId, b: GenerationalNodeId): boolean {
  return a.id === b.id && a.generation === b.generation;
}


/** The number inside a node id (`N3` → 3): the form the nodes configuration stores. */
export function nodeNumber(id: NodeId): number {
  return Number(id.slice(1));
}

/** Parses `"N<number>"` from untrusted input; undefined for anything else. */
export function parseNodeId(text: string): NodeId | undefined {
  return /^N[1-9][0-9]*$/.test(text) && Number.isSafeInteger(Number(text.slice(1))) ? (text as NodeId) : undefined;
}
