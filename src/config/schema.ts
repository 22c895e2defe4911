// The whole node configuration as one TypeBox schema. Every key has a type, a default and a
// description; docs/configuration.md is generated from this file (a test keeps it current).
// Keys are kebab-case, as in the TOML file. Objects are closed: an unknown key is an error.
import { DEFAULT_FABRIC_OPTIONS } from "../net/options.ts";
import { LogServerSection } from "../logserver/config.ts";
import { BifrostSection } from "../bifrost/config.ts";
import { ROLES, StringEnum, type Role } from "../ids/index.ts";
import { Type, type Static, type TSchema } from "@sinclair/typebox";

export { ROLES, StringEnum, type Role };

const Address = (description: string, dflt: string) =>
  Type.String({
    description: `${description} Written \`host:port\`; port 0 picks a free port (the node then writes its real addresses to \`addresses.json\` in its data directory).`,
    default: dflt,
    pattern: "^[^\\s:]+:[0-9]{1,5}$",
    examples: [dflt],
  });

const PositiveInt = (description: string, dflt: number, minimum = 1, maximum = 2 ** 31 - 1) =>
  Type.Integer({ description, default: dflt, minimum, maximum });

export const AdminSection = Type.Object(
  {
    "bind-address": Address("Where the admin API (HTTP/1.1 JSON, OpenAPI) listens.", "127.0.0.1:9070"),
    "advertised-address": Type.String({
      description:
        "The admin URL other nodes and `cairn ctl` should use to reach this node. Empty: derived from bind-address.",
      default: "",
    }),
    "max-body-bytes": PositiveInt("Largest request body the admin API accepts; larger ones get 413.", 4 * 1024 * 1024),
    token: Type.String({
      description:
        "Bearer token every admin request must carry (`Authorization: Bearer <token>`; `/health` is open). Required when bind-address is not a loopback address. `cairn ctl` sends it from --token or CAIRN_TOKEN.",
      default: "",
    }),
    "status-interval-ms": PositiveInt(
      "How often the node re-evaluates the cluster's state (GET /v1/cluster/status) in the background, pinging every node, so that state transitions and new warnings reach its log. Requests evaluate it afresh as well.",
      5_000,
      100,
    ),
  },
  { additionalProperties: false, description: "The admin API (role `admin` adds the cluster controller; every node serves the node endpoints)." },
);

export const IngressSection = Type.Object(
  {
    "bind-address": Address("Where the data-plane API listens (role `ingress`).", "127.0.0.1:8080"),
    "max-value-bytes": PositiveInt("Largest state value (one entry) a write may carry; larger ones get 413.", 1024 * 1024),
    "max-body-bytes": PositiveInt("Largest data-plane request body (a PATCH of several entries); larger ones get 413.", 4 * 1024 * 1024),
    "request-timeout-ms": PositiveInt(
      "How long a data-plane request may take, waiting for a partition leader included; then it is answered 503 with Retry-After (or 504 when a write's outcome is unknown).",
      5_000,
    ),
    "invocation-wait-ms": PositiveInt(
      "How long a call (or an attach) to a Restate handler on the data plane waits for the invocation's result; then it is answered 503 with Retry-After and the invocation's id (it goes on running: a retry with the same idempotency-key attaches to it).",
      10 * 60 * 1000,
    ),
  },
  { additionalProperties: false, description: "The data-plane HTTP API." },
);

export const InvokerSection = Type.Object(
  {
    "max-concurrent-attempts": PositiveInt("Most invocation attempts one partition leader runs against service endpoints at once; more wait their turn.", 256),
    "attempt-timeout-ms": PositiveInt(
      "Longest one attempt may take (cairn speaks request/response: an attempt ends at the handler's first wait that the journal cannot answer). A longer one is aborted and retried.",
      60_000,
    ),
    "retry-initial-interval-ms": PositiveInt("Delay before the first retry of a failed attempt (a service's or handler's retry policy overrides it).", 500),
    "retry-max-interval-ms": PositiveInt("Longest delay between two retries.", 60_000),
    "retry-factor": Type.Number({ minimum: 1, maximum: 10, default: 2, description: "Each retry's delay is the previous one times this, up to retry-max-interval-ms." }),
    "retry-max-attempts": Type.Integer({ minimum: 0, maximum: 2 ** 31 - 1, default: 70, description: "Failed attempts in a row before retry-on-max-attempts applies; 0: retry forever." }),
    "retry-on-max-attempts": StringEnum(["pause", "kill"], { default: "pause", description: "What happens after retry-max-attempts: `pause` keeps the invocation for an operator (`cairn ctl invocations resume|kill`), `kill` ends it with a failure." }),
    "completed-retention-ms": PositiveInt("How long a completed invocation (its status and result) is kept when it has neither an idempotency key nor is a workflow run.", 10 * 60 * 1000),
    "idempotency-retention-ms": PositiveInt("How long the result of an invocation with an idempotency key is kept (a duplicate request gets it back).", 24 * 60 * 60 * 1000),
    "workflow-retention-ms": PositiveInt("How long a workflow's run result, state and promises are kept after the run completed.", 24 * 60 * 60 * 1000),
    "call-wait-ms": PositiveInt("Longest a partition leader holds one request that waits for an invocation's result; the ingress then asks again (attach) until its own timeout.", 30_000),
    "first-attempt-before-record": Type.Boolean({
      default: true,
      description:
        "Run the first attempt of a call without an idempotency key before recording the invocation, and record both in one log write (for an object's handler, kept only if nothing else ran on the object meanwhile). A client that gets no answer then never had its call accepted, as with any lost request. false: record first, then run.",
    }),
  },
  { additionalProperties: false, description: "Durable invocations: how partition leaders run Restate SDK handlers." },
);

export const WorkerSection = Type.Object(
  {
    "reconcile-interval-ms": PositiveInt("How often a worker checks the partition placement (starts and stops processors, claims leadership).", 100),
    "rebalance-delay-ms": PositiveInt(
      "A worker node that (re)joined gets partition leaderships moved to it (to even leaderships out) only once the cluster controller has seen it alive, in its current generation, for this long; meanwhile it follows and catches up. Failovers are not delayed. Read by the cluster controller on the metadata leader.",
      5_000,
    ),
    "rebalance-interval-ms": PositiveInt(
      "Least time between two partition leadership moves made to even leaderships out; besides, a move waits until every placed leader leads (no takeover under way), so moves never leave several partitions leaderless together. Read by the cluster controller on the metadata leader.",
      1_000,
    ),
    "read-batch-records": PositiveInt("Most log records a partition processor applies in one store transaction.", 256),
    "idle-poll-max-ms": PositiveInt("Longest wait between two reads of an idle partition log (a leader is woken by its own appends; a follower of an idle partition notices a new record within this long, and reads at once while records keep coming).", 1_000),
    "follower-long-poll-ms": PositiveInt(
      "A follower processor of an idle partition waits this long at the log's sequencer for the next record (one request that returns as soon as a record is committed) instead of polling every idle-poll-max-ms; at most 3000 (the sequencer answers by then). 0: poll.",
      3_000,
      0,
      3_000,
    ),
    "store-failure-retry-ms": PositiveInt("After a partition store failed (disk full, I/O error) and its processor stopped, the worker opens the store again after this long, from its applied LSN; the wait doubles with each failure in a row.", 1_000),
    "store-failure-retry-max-ms": PositiveInt("Longest wait between two reopenings of a partition store that keeps failing.", 30_000),
    "durability-interval-ms": PositiveInt("How often a partition store is checkpointed (fsynced); the durable LSN advances then.", 1_000),
    "idempotency-retention-ms": PositiveInt("How long an Idempotency-Key and its answer are kept in the partition store (then a retry applies again).", 24 * 60 * 60 * 1000),
    "max-pending-proposals": PositiveInt("Most writes of one partition in flight on its leader (appended, not applied yet); more get 503 with Retry-After.", 4096),
    "leader-lease-ms": PositiveInt(
      "How long a partition leader answers reads after confirming its epoch in metadata without confirming it again, and how long (times 1.1) a new leader waits after bumping the epoch before it answers anything: every older leader's lease has run out by then. Longer: fewer confirmations under read load; shorter: faster failover.",
      250,
    ),
    "follower-batch-delay-ms": Type.Integer({
      minimum: 0,
      default: 20,
      description:
        "After applying fewer records than a full batch, a follower processor waits this long before reading its log again, so that it reads and applies records in batches instead of one network round trip per record. It bounds how far a follower trails its leader. 0: read again at once.",
    }),
    "idempotency-expire-batch": PositiveInt("Most expired idempotency results removed per applied write (bounds the work of each write).", 64),
  },
  { additionalProperties: false, description: "Partition processors (role `worker`)." },
);

export const SnapshotsSection = Type.Object(
  {
    repository: StringEnum(["none", "file", "s3"] as const, {
      description:
        "Where partition snapshots are kept: `none` (no snapshots), `file` (a directory: `path`), `s3` (an S3-compatible bucket). Every node of a cluster should name the same repository: any node may lead a partition and write its snapshots, and any may bootstrap from them.",
      default: "none",
    }),
    path: Type.String({ description: "Directory of the `file` repository. Empty: `<data-dir>/snapshots` (this node's alone; share one path between nodes on one host).", default: "" }),
    "s3-endpoint": Type.String({ description: "URL of the S3-compatible endpoint (`s3` repository), e.g. `https://s3.eu-west-1.amazonaws.com` or `http://127.0.0.1:9000`.", default: "" }),
    "s3-bucket": Type.String({ description: "Bucket of the `s3` repository (it must exist).", default: "" }),
    "s3-prefix": Type.String({ description: "Key prefix inside the bucket under which partitions' snapshots are kept (e.g. `cairn/prod`); empty: the bucket's root.", default: "" }),
    "s3-region": Type.String({ description: "Region of the bucket.", default: "us-east-1" }),
    "s3-access-key-id": Type.String({ description: "Access key of the `s3` repository. Empty: the AWS_ACCESS_KEY_ID environment variable.", default: "" }),
    "s3-secret-access-key": Type.String({ description: "Secret key of the `s3` repository. Empty: the AWS_SECRET_ACCESS_KEY environment variable.", default: "" }),
    "s3-part-size-bytes": PositiveInt(
      "`s3` repository: a snapshot store smaller than this is uploaded with one PUT; a larger one by a multipart upload in parts of this size (one request per part, which the store then assembles).",
      67_108_864,
      5_242_880,
      5_368_709_120,
    ),
    "num-retained": PositiveInt("Snapshots kept per partition; older ones are deleted after a newer one is published.", 1, 1, 1_000),
    "max-concurrent-per-node": PositiveInt("Most snapshots one node exports at once. 0: half the node's cores, at least 1.", 0, 0, 1_024),
    "export-in-memory-max-bytes": PositiveInt(
      "A partition store up to this size is exported by copying its pages in memory inside one read transaction (fast, little CPU; needs up to twice the store's size in memory per export running at once, snapshots and peer transfers); a larger one with VACUUM INTO (bounded memory, but it rebuilds the database: about 2.5 times the CPU). 0: always VACUUM INTO.",
      134_217_728,
      0,
    ),
    "busy-duty-cycle-percent": PositiveInt(
      "While a node serves at least busy-writes-per-second data-plane writes, each of its snapshot slots (max-concurrent-per-node) rests after a snapshot so that snapshots hold it only this share of the time: a job then takes longer but data-plane latency suffers less. 100: no rests (the default: busy-upload-bytes-per-second paces uploads more evenly).",
      100,
      1,
      100,
    ),
    "busy-upload-bytes-per-second": PositiveInt(
      "While a node is busy (busy-writes-per-second), a snapshot's upload from it flows at most at this rate (bytes per second; a store of s3-part-size-bytes or more goes at full speed): the repository's and the network's work is spread out instead of coming in bursts. 0: no limit.",
      16_777_216,
      0,
    ),
    "busy-writes-per-second": PositiveInt("Data-plane writes per second (those led by the node, over the last second) from which snapshots on the node are paced (busy-duty-cycle-percent).", 100, 1),
    "export-thread-nice": PositiveInt(
      "Niceness (Linux) of the thread that copies and checksums a store for a snapshot or a peer: above 0 the node's own work (applying, answering the data plane) gets the CPU first while an export runs. 0: the node's priority.",
      10,
      0,
      19,
    ),
    "max-concurrent-cluster": PositiveInt("Most snapshots the cluster controller runs at once across all nodes.", 8, 1, 4_096),
    "max-attempts": PositiveInt("Attempts per partition in a snapshot job before that partition is reported failed (each failed attempt is rolled back).", 4, 1, 100),
    "retry-backoff-initial-ms": PositiveInt("Wait before the first retry of a failed partition snapshot; doubles per attempt.", 500, 1),
    "retry-backoff-max-ms": PositiveInt("Longest wait between two attempts of a partition snapshot.", 10_000, 1),
    "request-timeout-ms": PositiveInt("Longest time one partition snapshot (export and upload on its leader) may take.", 300_000, 1_000),
    "max-running-jobs": PositiveInt("Most snapshot jobs the controller runs at once; more requests get 429.", 4, 1, 1_000),
    "max-finished-jobs": PositiveInt("Finished jobs the controller remembers for GET /v1/snapshots/jobs/{id}.", 64, 1, 100_000),
    "auto-every-records": PositiveInt("Automatic snapshots: snapshot a partition once its leader applied this many records since its last snapshot. 0: off.", 0, 0),
    "auto-every-seconds": PositiveInt("Automatic snapshots: snapshot a partition that applied records at least this often (seconds). 0: off.", 0, 0),
    "peer-transfer-chunk-bytes": PositiveInt(
      "Largest chunk of a partition store copied from a peer in one request (bootstrap without a covering snapshot in the repository). Must stay below net.max-response-bytes.",
      1_048_576,
      4_096,
      8_388_608,
    ),
    "peer-transfer-idle-timeout-ms": PositiveInt("A store exported for a peer is deleted once no chunk of it was asked for this long (the peer went away).", 30_000, 1_000),
    "peer-transfer-max-open": PositiveInt("Most store exports one node keeps open for peers at once; more requests are refused (the peer tries another node or retries).", 2, 1, 64),
  },
  { additionalProperties: false, description: "Partition snapshots: the repository, the snapshotter's limits and retries, automatic snapshots." },
);

const F = DEFAULT_FABRIC_OPTIONS;

export const NetSection = Type.Object(
  {
    "bind-address": Address("Where the peer fabric (HTTP/2 cleartext, node-to-node traffic) listens.", "127.0.0.1:5122"),
    "advertised-address": Type.String({
      description: "The fabric address other nodes should dial. Empty: derived from bind-address.",
      default: "",
    }),
    "server-transport": StringEnum(["bun", "node"] as const, {
      description: "HTTP/2 server implementation of the fabric port: `bun` (Bun.serve, several times the capacity) or `node` (node:http2, the fallback).",
      default: F.serverTransport,
    }),
    "max-in-flight-per-peer": PositiveInt("Most RPCs in flight to one peer at once; further calls wait in a bounded queue.", F.maxInFlightPerPeer),
    "max-queued-per-peer": PositiveInt("Calls that may wait for an in-flight slot per peer; beyond that a call fails with CAIRN-NET-0007.", F.maxQueuedPerPeer, 0),
    "max-in-flight-bytes-per-peer": PositiveInt("Request bytes sent to one peer and not yet answered.", F.maxInFlightBytesPerPeer),
    "max-request-bytes": PositiveInt("Largest RPC request body a node sends or accepts.", F.maxRequestBytes),
    "max-response-bytes": PositiveInt("Largest RPC response body a node reads.", F.maxResponseBytes),
    "request-timeout-ms": PositiveInt("Default deadline of one RPC, when the caller gives none.", F.requestTimeoutMs),
    "connect-timeout-ms": PositiveInt("How long to wait for a connection to a peer (TCP plus HTTP/2 settings).", F.connectTimeoutMs),
    "heartbeat-interval-ms": PositiveInt("How often every open peer session is pinged.", F.heartbeatIntervalMs),
    "heartbeat-timeout-ms": PositiveInt("A ping unanswered this long marks the peer unreachable and drops its session.", F.heartbeatTimeoutMs),
    "reconnect-backoff-initial-ms": PositiveInt("First delay before reconnecting to a peer.", F.reconnectBackoffInitialMs),
    "reconnect-backoff-max-ms": PositiveInt("Longest delay between reconnect attempts.", F.reconnectBackoffMaxMs),
    "window-size-bytes": PositiveInt("HTTP/2 flow-control window per session and stream.", F.windowSizeBytes),
    "max-session-memory-mb": PositiveInt("Memory one HTTP/2 session may buffer before the runtime drops it.", F.maxSessionMemoryMb),
    "drain-timeout-ms": PositiveInt("On shutdown, how long in-flight peer requests may finish after GOAWAY.", F.drainTimeoutMs),
    "cluster-secret": Type.String({
      description:
        "Shared secret every peer request carries; requests with another secret are refused. Required when bind-address is not a loopback address. The same on every node.",
      default: "",
    }),
  },
  { additionalProperties: false, description: "The peer fabric: HTTP/2 between nodes." },
);

export const MetadataServerSection = Type.Object(
  {
    type: StringEnum(["replicated", "local"] as const, {
      description:
        "`replicated`: the Raft-replicated metadata server (default). `local`: a single-node store in this node's data directory, for explicit single-node use; a data directory holding a local store is migrated to the replicated server automatically when the type is `replicated`.",
      default: "replicated",
    }),
    "auto-join": Type.Boolean({
      description:
        "A new node registers with metadata-server state `auto-join` and joins the metadata cluster by itself. False: it registers as `standby` for an operator to add (`cairn ctl metadata-server add`).",
      default: true,
    }),
    "max-value-bytes": PositiveInt("Largest metadata value accepted (bytes of JSON); larger writes get 413.", 1024 * 1024),
    "tick-interval-ms": PositiveInt("Raft tick period of the replicated metadata server.", 50),
    "election-timeout-ticks": PositiveInt("Ticks without a leader before a member campaigns (randomised up to twice this).", 10, 2),
    "heartbeat-interval-ticks": PositiveInt("Ticks between the leader's heartbeats; smaller than the election timeout.", 2),
    "snapshot-interval-entries": PositiveInt(
      "Applied entries between two snapshots of the metadata state. The state lives on disk, so a snapshot only records where it stands and compacts the Raft log behind it.",
      1000,
    ),
    "integrity-check-interval-ms": PositiveInt(
      "How often the metadata server re-runs SQLite's quick_check on its storage, in a worker thread (it also runs at start). Status reports the last result and its time.",
      3_600_000,
      1000,
    ),
    "request-timeout-ms": PositiveInt("Deadline of one metadata request, retries included; a write still unanswered then is reported as indeterminate.", 5000),
  },
  { additionalProperties: false, description: "The metadata store (role `metadata-server`)." },
);

export const MetadataClientSection = Type.Object(
  {
    addresses: Type.Array(Type.String({ pattern: "^[^\\s:]+:[0-9]{1,5}$" }), {
      description:
        "Fabric addresses (`host:port`) of metadata servers to contact first. Once the node has seen the nodes configuration it uses the current members. Empty: this node itself (it must run the metadata-server role).",
      default: [],
    }),
  },
  { additionalProperties: false, description: "How a node reaches the metadata cluster." },
);

export const TrimSection = Type.Object(
  {
    policy: StringEnum(["auto", "archived-lsn", "persisted-lsn", "off"] as const, {
      description:
        "How the cluster controller trims partition logs. `archived-lsn`: up to each partition's oldest retained snapshot (needs a snapshot repository). `persisted-lsn`: up to the lowest durable LSN of the partition's processors; only while the cluster has one node (it turns itself off, with warning CAIRN-TRIM-0001, when a second node registers). `auto`: archived-lsn with a repository, persisted-lsn on a single node without one, otherwise off with warning CAIRN-TRIM-0002. `off`: never automatically.",
      default: "auto",
    }),
    "min-age-ms": PositiveInt("No automatic trim of a log younger than this (since its first segment was created).", 10 * 60 * 1000, 0),
    "min-records": PositiveInt("No automatic trim of a log holding fewer untrimmed records than this.", 10_000, 0),
    "delay-ms": PositiveInt("A trim point is applied only once it has been a valid trim point for this long (a later, higher one waits its own delay).", 60_000, 0),
    "interval-ms": PositiveInt("How often the cluster controller (on the metadata leader) evaluates the trim policy.", 10_000, 50),
  },
  { additionalProperties: false, description: "Automatic trimming of partition logs (decided by the cluster controller on the metadata leader)." },
);

export const LogSection = Type.Object(
  {
    level: StringEnum(["trace", "debug", "info", "warn", "error"] as const, {
      description: "Least severe log level written.",
      default: "info",
    }),
    format: StringEnum(["auto", "json", "text"] as const, {
      description: "`json`: one JSON object per line. `text`: one readable line per entry. `auto`: text on a terminal, JSON otherwise.",
      default: "auto",
    }),
  },
  { additionalProperties: false, description: "Structured logs on standard output." },
);

export const ConfigSchema = Type.Object(
  {
    "cluster-name": Type.String({
      description: "Name of the cluster this node belongs to. Peers from a cluster with another name are refused.",
      default: "localcluster",
      minLength: 1,
      maxLength: 64,
      pattern: "^[A-Za-z0-9][A-Za-z0-9._-]*$",
    }),
    "node-name": Type.String({
      description: "Unique name of this node in the cluster. Empty: the host name.",
      default: "",
      maxLength: 64,
      pattern: "^([A-Za-z0-9][A-Za-z0-9._-]*)?$",
    }),
    "base-dir": Type.String({
      description: "The node's data directory. Empty: `./cairn-data/<node-name>`. Two processes cannot share one.",
      default: "",
    }),
    roles: Type.Array(
      StringEnum(ROLES),
      {
        description: "The roles this node runs.",
        default: [...ROLES],
        uniqueItems: true,
        minItems: 1,
      },
    ),
    "shutdown-timeout-ms": PositiveInt("How long a graceful shutdown (SIGTERM/SIGINT) may take before the node exits anyway.", 10_000),
    "auto-provision": Type.Boolean({
      description:
        "Provision the cluster at start if it is not provisioned yet, with this node as the first metadata member. Set it on one node only; otherwise provision with `cairn ctl provision`.",
      default: false,
    }),
    admin: AdminSection,
    ingress: IngressSection,
    worker: WorkerSection,
    invoker: InvokerSection,
    snapshots: SnapshotsSection,
    net: NetSection,
    "metadata-server": MetadataServerSection,
    "metadata-client": MetadataClientSection,
    "log-server": LogServerSection,
    bifrost: BifrostSection,
    trim: TrimSection,
    log: LogSection,
  },
  { additionalProperties: false },
);

export type Config = Static<typeof ConfigSchema>;
export type NetConfig = Static<typeof NetSection>;
export type WorkerConfig = Static<typeof WorkerSection>;
export type InvokerConfig = Static<typeof InvokerSection>;
export type SnapshotsConfig = Static<typeof SnapshotsSection>;
export type IngressConfig = Static<typeof IngressSection>;
export type TrimConfig = Static<typeof TrimSection>;

/** Walk the schema and collect its defaults into a full config object. */
export function defaultsOf(schema: TSchema): unknown {
  if (schema.type === "object" && schema.properties) {
    const out: Record<string, unknown> = {};
    for (const [k, sub] of Object.entries(schema.properties as Record<string, TSchema>)) {
      out[k] = defaultsOf(sub);
    }
    return out;
  }
  const d: unknown = schema.default;
  return Array.isArray(d) ? [...d] : d;
}

export function defaultConfig(): Config {
  return defaultsOf(ConfigSchema) as Config;
}
