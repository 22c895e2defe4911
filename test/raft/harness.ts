// A tiny synchronous cluster for scenario tests: messages are delivered instantly (unless a link is
// cut), every Ready is persisted to a MemoryStorage before its messages go out, and each node keeps
// the list of entries it applied. Tests drive it step by step.

import type { Entry, Message, RaftId, RaftConfigInput, Ready } from "../../src/raft/index.ts";
import { MemoryStorage, RaftNode, Xoshiro128, bootstrapPersistedState, joiningPersistedState } from "../../src/raft/index.ts";

export const id = (n: number): RaftId => n as RaftId;
export const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
export const text = (b: Uint8Array): string => new TextDecoder().decode(b);

export interface HarnessNode {
  node: RaftNode;
  storage: MemoryStorage;
  applied: Entry[];
  readStates: { index: number; ctx: string }[];
  readies: Ready[];
}

export type ConfigOverrides = Omit<RaftConfigInput, "id">;

export class Cluster {
  readonly nodes = new Map<RaftId, HarnessNode>();
  /** Directed links that drop everything ("from->to"). */
  private readonly cut = new Set<string>();
  /** Messages held back instead of delivered (for scenario tests that reorder by hand). */
  readonly held: Message[] = [];
  hold: (m: Message) => boolean = () => false;
  delivered: Message[] = [];

  constructor(
    voters: number[],
    private readonly overrides: ConfigOverrides = {},
    seed = 1,
  ) {
    const persisted = bootstrapPersistedState(voters.map(id));
    for (const n of voters) {
      this.addNode(n, MemoryStorage.fromPersistedState(persisted), seed);
    }
  }

  addNode(n: number, storage: MemoryStorage, seed = 1, overrides: ConfigOverrides = {}): HarnessNode {
    const node = new RaftNode({
      config: { id: id(n), ...this.overrides, ...overrides },
      storage,
      random: new Xoshiro128(seed * 1000 + n),
    });
    const h: HarnessNode = { node, storage, applied: [], readStates: [], readies: [] };
    this.nodes.set(id(n), h);
    return h;
  }

  /** Adds a brand-new empty node (to be added to the configuration by a leader). */
  addJoiningNode(n: number): HarnessNode {
    return this.addNode(n, MemoryStorage.fromPersistedState(joiningPersistedState()));
  }

  /** Rebuilds a node from its storage, as after a crash (unpersisted state is already gone). */
  restart(n: number, overrides: ConfigOverrides = {}): HarnessNode {
    const old = this.get(n);
    return this.addNode(n, old.storage, 7, overrides);
  }

  get(n: number): HarnessNode {
    const h = this.nodes.get(id(n));
    if (h === undefined) throw new Error(`no node ${n}`);
    return h;
  }

  isolate(n: number): void {
    for (const other of this.nodes.keys()) {
      if (other === n) continue;
      this.cut.add(`${n}->${other}`);
      this.cut.add(`${other}->${n}`);
    }
  }

  cutLink(from: number, to: number): void {
    this.cut.add(`${from}->${to}`);
  }

  heal(): void {
    this.cut.clear();
  }

  remove(n: number): void {
    this.nodes.delete(id(n));
  }

  tick(n: number, times = 1): void {
    for (let k = 0; k < times; k++) this.get(n).node.tick();
  }

  tickAll(times = 1): void {
    for (let k = 0; k < times; k++) {
      for (const h of this.nodes.values()) h.node.tick();
      this.stabilize();
    }
  }

  /** Handles one Ready on node n (persist, apply, advance) and returns its messages. */
  processReady(h: HarnessNode): Message[] {
    if (!h.node.hasReady()) return [];
    const rd = h.node.ready();
    h.readies.push(rd);
    if (rd.snapshot !== null) {
      h.storage.applySnapshot(rd.snapshot);
      h.applied = [];
    }
    h.storage.append(rd.entries);
    if (rd.hardState !== null) h.storage.setHardState(rd.hardState);
    for (const e of rd.committedEntries) h.applied.push(e);
    for (const r of rd.readStates) h.readStates.push({ index: r.index, ctx: r.ctx });
    h.node.advance();
    return [...rd.messages];
  }

  /** Runs Ready processing and delivery until nothing moves. */
  stabilize(maxRounds = 10_000): void {
    for (let round = 0; round < maxRounds; round++) {
      const msgs: Message[] = [];
      let busy = false;
      for (const h of this.nodes.values()) {
        if (h.node.hasReady()) busy = true;
        msgs.push(...this.processReady(h));
      }
      if (!busy) return;
      for (const m of msgs) this.deliver(m);
    }
    throw new Error("cluster did not stabilize");
  }

  deliver(m: Message): void {
    if (this.cut.has(`${m.from}->${m.to}`)) return;
    const target = this.nodes.get(m.to);
    if (target === undefined) return;
    if (this.hold(m)) {
      this.held.push(m);
      return;
    }
    this.delivered.push(m);
    target.node.step(m);
  }

  /** Ticks node n until it campaigns, then lets the election finish. */
  elect(n: number): void {
    const h = this.get(n);
    for (let k = 0; k < 1000 && h.node.inspect.role() !== "leader"; k++) {
      h.node.tick();
      this.stabilize();
    }
    if (h.node.inspect.role() !== "leader") throw new Error(`node ${n} did not become leader`);
  }

  leaders(): RaftId[] {
    return [...this.nodes.values()].filter((h) => h.node.inspect.role() === "leader").map((h) => h.node.id);
  }

  appliedData(n: number): string[] {
    return this.get(n)
      .applied.filter((e) => e.kind === "normal" && e.data.byteLength > 0)
      .map((e) => (e.kind === "normal" ? text(e.data) : ""));
  }
}

/** Builds storage holding `terms.length` entries (entry k+1 has term terms[k]; the first `voters` are the bootstrap). */
export function storageWithLog(voters: number[], extraTerms: number[], hardState: { term: number; vote?: number; commit: number }): MemoryStorage {
  const boot = bootstrapPersistedState(voters.map(id));
  const entries: Entry[] = [...boot.entries];
  for (const t of extraTerms) {
    const index = entries.length + 1;
    entries.push({ kind: "normal", term: t as never, index: index as never, data: new Uint8Array(0) });
  }
  return MemoryStorage.fromPersistedState({
    hardState: { term: hardState.term as never, vote: (hardState.vote ?? 0) as never, commit: hardState.commit as never },
    entries,
  });
}
