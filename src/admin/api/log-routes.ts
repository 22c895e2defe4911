// Log routes: list and describe logs (their chains of segments), find a log's tail, seal, trim and
// reconfigure it, append records and read them back. Any node answers: appends are forwarded to the
// tail segment's sequencer, reads go to the log-servers.
//
// Record encoding on the wire: an append sends `records` as strings, all UTF-8 text (default) or
// all base64 (`"encoding": "base64"`), so binary records travel as base64. A read returns each
// record with its own `encoding`: `utf8` when the bytes are valid UTF-8 and the reader asked for
// utf8 (the default), `base64` otherwise. Trim gaps are entries of their own, never skipped.
import { Elysia, t } from "elysia";
import { Type } from "@sinclair/typebox";
import type { Bifrost, LogReadEntry, RereplicationProgress } from "../../bifrost/bifrost.ts";
import { planRereplication } from "../../bifrost/rereplication-plan.ts";
import { tailSegment, type LogChain, type Segment } from "../../bifrost/chain.ts";
import { logId, lsn, nodeId, type NodeId } from "../../ids/index.ts";
import { CairnError } from "../../observability/errors.ts";
import { archivedLsnOf, readArchivedIndex } from "../controller/trim-inputs.ts";
import { closed, models } from "./models.ts";
import type { AdminDeps } from "./deps.ts";

const MAX_U32 = 2 ** 32 - 1;
const LsnInt = (description: string) => Type.Integer({ minimum: 0, description });

export const LogSegment = Type.Object(
  {
    index: Type.Integer({ minimum: 0, description: "Position in the chain; only grows." }),
    baseLsn: Type.Integer({ minimum: 1, description: "LSN of the segment's first record." }),
    sealedTail: Type.Union([Type.Integer({ minimum: 1 }), Type.Null()], {
      description: "LSN one past the segment's last record once it is sealed (the next segment's base); null while it takes appends.",
    }),
    sealedBy: Type.Union([Type.Literal("operator"), Type.Literal("reconfiguration"), Type.Null()], {
      description:
        "Who sealed it: `operator` (POST /v1/logs/{log}/seal; the log takes appends again once an operator reconfigures it) or `reconfiguration` (on the way to the next segment, which the log controller adds if the reconfiguration was cut off); null while it takes appends, or when an older version sealed it.",
    }),
    kind: Type.Union([Type.Literal("local"), Type.Literal("replicated")]),
    loglet: Type.String({ description: "Loglet id `<log>_<index>`." }),
    sequencer: Type.String({ description: "The node and generation that appends (`N2:5`)." }),
    nodeset: Type.Array(Type.String(), { description: "Log-servers holding the segment's records." }),
    replication: Type.Integer({ minimum: 1, description: "Copies of each record." }),
    placement: Type.Union([Type.Literal("auto"), Type.Literal("manual")], {
      description: "`manual`: chosen by an operator; the log controller never moves it.",
    }),
    createdAtMs: Type.Integer(),
  },
  { description: "One segment (loglet) of a log's chain." },
);

export const LogRereplication = Type.Object(
  {
    segment: Type.Integer({ minimum: 0, description: "The sealed segment being (or last) copied." }),
    targets: Type.Array(Type.String(), { description: "Log-servers receiving a full copy." }),
    records: Type.Integer({ minimum: 0, description: "Records to copy." }),
    copiedRecords: Type.Integer({ minimum: 0, description: "Records durable on every target so far." }),
    state: Type.Union([Type.Literal("copying"), Type.Literal("done"), Type.Literal("failed")], {
      description: "`done`: the segment's nodeset now names the targets. `failed`: the nodeset is unchanged; the controller retries.",
    }),
    error: Type.Optional(Type.String({ description: "Why it failed (with its CAIRN code)." })),
    startedAtMs: Type.Integer(),
    finishedAtMs: Type.Union([Type.Integer(), Type.Null()]),
  },
  { description: "The latest re-replication of the log run by the answering node (the metadata leader runs the automatic ones)." },
);

export const LogInfo = Type.Object(
  {
    id: Type.Integer({ minimum: 0, description: "Log id (one log per partition)." }),
    trimPoint: LsnInt("Last trimmed LSN; 0 = never trimmed."),
    sealed: Type.Boolean({ description: "The tail segment is sealed: appends wait for a reconfiguration." }),
    segments: Type.Array(LogSegment),
    underReplicatedRecords: Type.Integer({
      minimum: 0,
      description: "Records of sealed segments with fewer copies than the log's current replication (its tail segment's); re-replication copies them onto more log-servers.",
    }),
    rereplication: Type.Union([LogRereplication, Type.Null()], { description: "This node's latest re-replication of the log; null if none." }),
  },
  { description: "A log and its chain of segments." },
);

export const LogList = Type.Object(
  { defaultReplication: Type.Integer({ minimum: 1 }), logs: Type.Array(LogInfo), version: Type.Integer({ description: "Version of the `logs` metadata key." }) },
  { description: "Every log with its chain." },
);

export const LogTailInfo = Type.Object(
  {
    log: Type.Integer({ minimum: 0 }),
    tailLsn: Type.Integer({ minimum: 1, description: "First LSN not yet written: every LSN below it is durable." }),
    sealed: Type.Boolean({ description: "The tail segment is sealed and no newer segment exists yet." }),
    segment: Type.Union([Type.Integer({ minimum: 0 }), Type.Null()], { description: "Index of the tail segment; null for an empty chain." }),
    trimPoint: LsnInt("Last trimmed LSN; 0 = never trimmed."),
  },
  { description: "Where a log ends." },
);

export const LogDescription = Type.Object(
  { log: LogInfo, tail: LogTailInfo },
  { description: "A log's chain and its current tail." },
);

export const LogTrimRequest = Type.Object(
  { toLsn: Type.Integer({ minimum: 0, description: "Trim every record at or below this LSN (clipped below the tail)." }) },
  { additionalProperties: false, description: "How far to trim." },
);

export const LogTrimResult = Type.Object(
  {
    log: Type.Integer({ minimum: 0 }),
    trimPoint: LsnInt("The log's trim point now."),
    archivedLsn: LsnInt("The partition's archived LSN (its oldest retained snapshot); 0 = nothing archived."),
    discarded: Type.Union([Type.Object({ fromLsn: LsnInt("First LSN cut that no snapshot covers."), toLsn: LsnInt("Last one.") }), Type.Null()], {
      description: "Records the trim cut past the archived LSN (only with force=true); null when every cut record is covered by a snapshot.",
    }),
  },
  { description: "The trim point after the trim." },
);

export const LogReconfigureRequest = Type.Object(
  {
    kind: Type.Optional(Type.Union([Type.Literal("local"), Type.Literal("replicated")], { description: "Loglet kind of the new segment (default: the current one)." })),
    replication: Type.Optional(Type.Integer({ minimum: 1, maximum: 9, description: "Copies per record (default: the current segment's)." })),
    nodeset: Type.Optional(
      Type.Array(Type.String({ pattern: "^N[1-9][0-9]*$" }), { minItems: 1, maxItems: 64, description: "Log-servers of the new segment (a manual placement). Default: chosen among live log-servers." }),
    ),
    sequencer: Type.Optional(Type.String({ pattern: "^N[1-9][0-9]*$", description: "Node that sequences the new segment. Default: the current one if alive." })),
  },
  { additionalProperties: false, description: "Placement of the log's next segment; everything left out is kept or chosen." },
);

export const LogAppendRequest = Type.Object(
  {
    records: Type.Array(Type.String(), { minItems: 1, description: "The records, in order." }),
    encoding: Type.Optional(
      Type.Union([Type.Literal("utf8"), Type.Literal("base64")], { description: "How every record string is encoded: UTF-8 text (default) or base64 bytes." }),
    ),
  },
  { additionalProperties: false, description: "A batch of records, appended atomically in order." },
);

export const LogAppendResult = Type.Object(
  {
    log: Type.Integer({ minimum: 0 }),
    firstLsn: Type.Integer({ minimum: 1 }),
    lastLsn: Type.Integer({ minimum: 1 }),
    count: Type.Integer({ minimum: 1 }),
  },
  { description: "The batch is durable on r log-servers at LSNs firstLsn..lastLsn." },
);

export const LogRecords = Type.Object(
  {
    log: Type.Integer({ minimum: 0 }),
    entries: Type.Array(
      Type.Union([
        Type.Object({
          kind: Type.Literal("record"),
          lsn: Type.Integer({ minimum: 1 }),
          data: Type.String(),
          encoding: Type.Union([Type.Literal("utf8"), Type.Literal("base64")]),
        }),
        Type.Object({
          kind: Type.Literal("trim-gap"),
          fromLsn: Type.Integer({ minimum: 1 }),
          toLsn: Type.Integer({ minimum: 1, description: "Inclusive: the next entry starts at toLsn + 1." }),
        }),
      ]),
    ),
    nextLsn: Type.Integer({ minimum: 1, description: "Where to continue reading." }),
    tailLsn: Type.Integer({ minimum: 1, description: "The log's tail when the read started." }),
    trimPoint: LsnInt("The log's trim point."),
  },
  { description: "Records of a log in LSN order, with trim gaps as explicit entries." },
);

const logModels = new Elysia({ name: "log-models" }).model(closed({
  LogSegment,
  LogRereplication,
  LogInfo,
  LogList,
  LogTailInfo,
  LogDescription,
  LogTrimRequest,
  LogTrimResult,
  LogReconfigureRequest,
  LogAppendRequest,
  LogAppendResult,
  LogRecords,
}));

function segmentInfo(s: Segment) {
  return {
    index: s.index,
    baseLsn: s.baseLsn,
    sealedTail: s.sealedTail ?? null,
    sealedBy: s.sealedBy ?? null,
    kind: s.kind,
    loglet: s.params.loglet,
    sequencer: s.params.sequencer,
    nodeset: [...s.params.nodeset],
    replication: s.params.replication,
    placement: s.placement,
    createdAtMs: s.createdAtMs,
  };
}

function logInfo(l: LogChain, progress: RereplicationProgress | undefined) {
  // Pure count from the chain (a segment's copies against the tail segment's replication).
  const plan = planRereplication({ doc: { defaultReplication: 1, logs: [l] }, candidates: [], lost: () => false, inflight: new Set(), maxPlans: 0 });
  return {
    id: l.id,
    trimPoint: l.trimPoint,
    sealed: tailSegment(l)?.sealedTail !== undefined,
    segments: l.segments.map(segmentInfo),
    underReplicatedRecords: plan.underReplicatedRecords.get(l.id) ?? 0,
    rereplication:
      progress === undefined
        ? null
        : {
            segment: progress.segment,
            targets: [...progress.targets],
            records: progress.records,
            copiedRecords: progress.copiedRecords,
            state: progress.state,
            ...(progress.error !== undefined ? { error: progress.error } : {}),
            startedAtMs: progress.startedAtMs,
            finishedAtMs: progress.finishedAtMs ?? null,
          },
  };
}

const decoder = new TextDecoder("utf-8", { fatal: true });

function encodeEntry(e: LogReadEntry, preferUtf8: boolean) {
  if (e.kind === "trim-gap") return { kind: "trim-gap" as const, fromLsn: e.from, toLsn: e.to };
  if (preferUtf8) {
    try {
      return { kind: "record" as const, lsn: e.lsn, data: decoder.decode(e.payload), encoding: "utf8" as const };
    } catch {
      // Not UTF-8: fall through to base64.
    }
  }
  return { kind: "record" as const, lsn: e.lsn, data: Buffer.from(e.payload).toString("base64"), encoding: "base64" as const };
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

function decodeRecords(records: readonly string[], encoding: "utf8" | "base64"): Uint8Array[] {
  const encoder = new TextEncoder();
  return records.map((r, i) => {
    if (encoding === "utf8") return encoder.encode(r);
    if (r.length % 4 !== 0 || !BASE64.test(r)) {
      throw new CairnError("LOG_INVALID_RECORD", `record ${i} is not valid base64`, { index: i });
    }
    return new Uint8Array(Buffer.from(r, "base64"));
  });
}

function parseLogId(text: string): ReturnType<typeof logId> {
  if (!/^(0|[1-9][0-9]{0,9})$/.test(text) || Number(text) > MAX_U32) {
    throw new CairnError("API_VALIDATION", `log must be a log id (a whole number), got '${text.slice(0, 32)}'`, { errors: [{ path: "/log", message: "not a log id" }] });
  }
  return logId(Number(text));
}

export function logRoutes(deps: AdminDeps) {
  const bifrost = (): Bifrost => {
    const b = deps.logs();
    if (b === undefined) throw new CairnError("NODE_NOT_READY", "the logs layer of this node is not running");
    return b;
  };
  const LogParams = t.Object({ log: t.String({ description: "Log id (`cairn ctl logs list` shows them)." }) });
  const errors = { 400: "Problem", 404: "Problem", 503: "Problem" } as const;
  const tail = async (log: ReturnType<typeof logId>) => {
    const r = await bifrost().findTail(log);
    return { log, tailLsn: r.tailLsn, sealed: r.sealed, segment: r.segment, trimPoint: r.trimPoint };
  };
  return new Elysia({ name: "log-routes" })
    .use(models)
    .use(logModels)
    .get(
      "/v1/logs",
      async () => {
        const { doc, version } = await bifrost().logsDocument(true);
        const b = bifrost();
        return { defaultReplication: doc.defaultReplication, logs: doc.logs.map((l) => logInfo(l, b.rereplicationProgress(logId(l.id)))), version };
      },
      {
        response: { 200: "LogList", ...errors },
        detail: { operationId: "listLogs", tags: ["logs"], summary: "Every log and its chain of segments" },
      },
    )
    .get(
      "/v1/logs/:log",
      async ({ params }) => {
        const log = parseLogId(params.log);
        const chain = await bifrost().chain(log, true);
        return { log: logInfo(chain, bifrost().rereplicationProgress(log)), tail: await tail(log) };
      },
      {
        params: LogParams,
        response: { 200: "LogDescription", ...errors },
        detail: { operationId: "describeLog", tags: ["logs"], summary: "A log's chain of segments and its tail" },
      },
    )
    .get("/v1/logs/:log/tail", async ({ params }) => tail(parseLogId(params.log)), {
      params: LogParams,
      response: { 200: "LogTailInfo", ...errors },
      detail: { operationId: "findLogTail", tags: ["logs"], summary: "The log's tail: the first LSN not yet written, and whether it is sealed" },
    })
    .post(
      "/v1/logs/:log/seal",
      async ({ params }) => {
        const log = parseLogId(params.log);
        await bifrost().seal(log);
        return tail(log);
      },
      {
        params: LogParams,
        response: { 200: "LogTailInfo", 409: "Problem", ...errors },
        detail: {
          operationId: "sealLog",
          tags: ["logs"],
          summary: "Seal the log's tail segment",
          description:
            "Seals the tail loglet on its log-servers, finds and repairs its tail, and records it in the chain. Appends then wait (and time out with CAIRN-LOG-0001) until the log is reconfigured.",
        },
      },
    )
    .post(
      "/v1/logs/:log/trim",
      async ({ params, body, query }) => {
        const log = parseLogId(params.log);
        const api = deps.metadata();
        const archivedLsn = (api === undefined ? null : archivedLsnOf(await readArchivedIndex(api, log))) ?? 0;
        const before = await tail(log);
        // What this trim would cut that no snapshot covers: from above both the trim point and
        // the archived LSN up to the (clipped) target.
        const cutTo = Math.min(body.toLsn, before.tailLsn - 1);
        const fromLsn = Math.max(archivedLsn, before.trimPoint) + 1;
        const discarded = cutTo >= fromLsn ? { fromLsn, toLsn: cutTo } : null;
        if (discarded !== null && query.force !== true) {
          throw new CairnError(
            "TRIM_PAST_ARCHIVED",
            `trimming log ${log} to ${body.toLsn} would discard LSNs ${discarded.fromLsn}..${discarded.toLsn} (${discarded.toLsn - discarded.fromLsn + 1} records) that no snapshot covers (archived LSN ${archivedLsn})`,
            { archivedLsn, discarded },
          );
        }
        const r = await bifrost().trim(log, lsn(body.toLsn));
        if (discarded !== null) deps.onForcedTrim?.({ log, archivedLsn, discarded });
        return { log, trimPoint: r.trimPoint, archivedLsn, discarded };
      },
      {
        parse: "json",
        params: LogParams,
        query: t.Object({
          force: t.Optional(
            t.Boolean({ description: "Cut past the archived LSN too: the records above it are lost for any processor that has not applied them. Default false: such a trim is refused (CAIRN-TRIM-0004)." }),
          ),
        }),
        body: "LogTrimRequest",
        response: { 200: "LogTrimResult", 409: "Problem", ...errors },
        detail: {
          operationId: "trimLog",
          tags: ["logs"],
          summary: "Trim the log up to an LSN",
          description:
            "Records at or below toLsn (clipped below the tail) are deleted; reads there report a trim gap from then on. A trim that would cut records above the partition's archived LSN (its oldest retained snapshot, none without snapshots) is refused with 409 CAIRN-TRIM-0004 unless force=true.",
        },
      },
    )
    .post(
      "/v1/logs/:log/reconfigure",
      async ({ params, body }) => {
        const log = parseLogId(params.log);
        const chain = await bifrost().reconfigure(
          log,
          {
            ...(body.kind ? { kind: body.kind } : {}),
            ...(body.replication !== undefined ? { replication: body.replication } : {}),
            ...(body.nodeset ? { nodeset: body.nodeset.map((n): NodeId => nodeId(n)) } : {}),
            ...(body.sequencer ? { sequencer: nodeId(body.sequencer) } : {}),
          },
          { reason: "operator" },
        );
        return { log: logInfo(chain, bifrost().rereplicationProgress(log)), tail: await tail(log) };
      },
      {
        parse: "json",
        params: LogParams,
        body: "LogReconfigureRequest",
        response: { 200: "LogDescription", 409: "Problem", ...errors },
        detail: {
          operationId: "reconfigureLog",
          tags: ["logs"],
          summary: "Seal the tail segment and continue the log in a new one",
          description:
            "Seals the tail segment (if open), records its tail, and appends a segment with the given kind, replication, nodeset and sequencer (anything left out is kept or chosen among live log-servers). Local → replicated is this call with kind = replicated. Older segments stay readable.",
        },
      },
    )
    .post(
      "/v1/logs/:log/rereplicate",
      async ({ params, request }) => {
        const log = parseLogId(params.log);
        await bifrost().rereplicateLog(log, request.signal);
        const chain = await bifrost().chain(log, true);
        return { log: logInfo(chain, bifrost().rereplicationProgress(log)), tail: await tail(log) };
      },
      {
        params: LogParams,
        response: { 200: "LogDescription", 409: "Problem", ...errors },
        detail: {
          operationId: "rereplicateLog",
          tags: ["logs"],
          summary: "Copy the log's under-replicated sealed segment onto more log-servers now",
          description:
            "Re-replication on demand (the log controller also runs it in the background): the first sealed segment with fewer copies than the log's current replication is copied onto live log-servers outside its nodeset, and its nodeset and replication change once the copies are durable. Answers when done (nothing to do is a success). 409 CAIRN-LOG-0024: no log-server can take a copy; 503 CAIRN-LOG-0022/0023: a source or target failed (the nodeset is unchanged).",
        },
      },
    )
    .post(
      "/v1/logs/:log/records",
      async ({ params, body, request }) => {
        const log = parseLogId(params.log);
        const payloads = decodeRecords(body.records, body.encoding ?? "utf8");
        const r = await bifrost().append(log, payloads, request.signal);
        return { log, firstLsn: r.first, lastLsn: r.last, count: payloads.length };
      },
      {
        parse: "json",
        params: LogParams,
        body: "LogAppendRequest",
        response: { 200: "LogAppendResult", 409: "Problem", 413: "Problem", ...errors },
        detail: {
          operationId: "appendLogRecords",
          tags: ["logs"],
          summary: "Append a batch of records; answers with their LSNs once durable",
          description:
            "Records are strings: UTF-8 text, or base64 bytes with encoding = base64. The answer comes once every record is stored on r log-servers. 503 CAIRN-LOG-0014 means the outcome is unknown (the sequencer was lost with the batch in flight): read before appending again.",
        },
      },
    )
    .get(
      "/v1/logs/:log/records",
      async ({ params, query, request }) => {
        const log = parseLogId(params.log);
        const from = query.from === undefined ? 1 : Number(query.from);
        const limit = query.limit === undefined ? undefined : Number(query.limit);
        if (!Number.isSafeInteger(from) || from < 0) throw new CairnError("API_VALIDATION", "from must be a whole number ≥ 0");
        if (limit !== undefined && (!Number.isSafeInteger(limit) || limit < 1)) throw new CairnError("API_VALIDATION", "limit must be a whole number ≥ 1");
        const r = await bifrost().read(log, lsn(from), { ...(limit !== undefined ? { limit } : {}), signal: request.signal });
        const utf8 = (query.encoding ?? "utf8") === "utf8";
        return { log, entries: r.entries.map((e) => encodeEntry(e, utf8)), nextLsn: r.nextLsn, tailLsn: r.tailLsn, trimPoint: r.trimPoint };
      },
      {
        params: LogParams,
        query: t.Object({
          from: t.Optional(t.String({ pattern: "^[0-9]{1,15}$", description: "First LSN to read (default 1)." })),
          limit: t.Optional(t.String({ pattern: "^[0-9]{1,9}$", description: "Most entries to return (default and maximum: bifrost.max-read-records)." })),
          encoding: t.Optional(
            t.Union([t.Literal("utf8"), t.Literal("base64")], { description: "utf8 (default): records that are valid UTF-8 come as text, others as base64. base64: all as base64." }),
          ),
        }),
        response: { 200: "LogRecords", ...errors },
        detail: {
          operationId: "readLogRecords",
          tags: ["logs"],
          summary: "Read records from an LSN on (never past the tail); trimmed ranges come back as trim-gap entries",
        },
      },
    );
}
