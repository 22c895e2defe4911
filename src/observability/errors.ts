// The error catalogue: every expected failure cairn reports has a stable code `CAIRN-<AREA>-<NNNN>`,
// an HTTP status, a title and a hint of what to do. docs/errors.md is generated from this table and a
// test keeps it current. Bugs are not errors: they are assertions (see `invariant`), and crash loudly.

export interface ErrorSpec {
  /** Stable code, never reused for another meaning. */
  readonly code: string;
  /** HTTP status an API answers with. */
  readonly status: number;
  /** One line: what went wrong, in general terms. */
  readonly title: string;
  /** What the user should do about it. */
  readonly hint: string;
}

function spec(code: string, status: number, title: string, hint: string): ErrorSpec {
  return { code, status, title, hint };
}

/** The catalogue. Keys are the names code refers to; codes are what users see. */
export const ERRORS = {
  // ---- CONFIG: configuration loading and validation -------------------------------------------
  CONFIG_INVALID: spec(
    "CAIRN-CONFIG-0001",
    400,
    "The configuration is invalid",
    "Fix the key named in the message (see docs/configuration.md for every key, its type and default).",
  ),
  CONFIG_UNKNOWN_KEY: spec(
    "CAIRN-CONFIG-0002",
    400,
    "The configuration has a key cairn does not know",
    "Remove or correct the key; a typo is the usual cause. docs/configuration.md lists every key.",
  ),
  CONFIG_FILE_UNREADABLE: spec(
    "CAIRN-CONFIG-0003",
    400,
    "The configuration file cannot be read or parsed",
    "Check the path given to --config and that the file is valid TOML.",
  ),
  CONFIG_CONFLICT: spec(
    "CAIRN-CONFIG-0004",
    400,
    "Configuration values contradict each other",
    "Change one of the keys named in the message so the combination is possible.",
  ),
  CONFIG_ENV_INVALID: spec(
    "CAIRN-CONFIG-0005",
    400,
    "An environment variable cannot be used as configuration",
    "Fix or unset the CAIRN_* variable named in the message.",
  ),

  // ---- NODE: node start-up, data directory, identity ------------------------------------------
  NODE_DATA_DIR_LOCKED: spec(
    "CAIRN-NODE-0001",
    409,
    "Another cairn process is using this data directory",
    "Stop the other process (its PID is in the message) or start this node with a different --base-dir.",
  ),
  NODE_DATA_DIR_UNUSABLE: spec(
    "CAIRN-NODE-0002",
    500,
    "The data directory cannot be created or written",
    "Check the path and its permissions, or choose another with --base-dir.",
  ),
  NODE_CLUSTER_MISMATCH: spec(
    "CAIRN-NODE-0003",
    409,
    "The data directory belongs to a different cluster",
    "Use the data directory with the cluster it was created for, or start with an empty --base-dir.",
  ),
  NODE_NOT_READY: spec(
    "CAIRN-NODE-0004",
    503,
    "The node is not ready to serve its roles",
    "Wait for the node to finish starting; GET /ready names what it is waiting for.",
  ),
  NODE_SHUTTING_DOWN: spec(
    "CAIRN-NODE-0005",
    503,
    "The node is shutting down",
    "Send the request to another node of the cluster.",
  ),
  NODE_PORT_IN_USE: spec(
    "CAIRN-NODE-0006",
    409,
    "A port this node wants to bind is already in use",
    "Stop whatever holds the port, or configure another (0 picks a free port).",
  ),
  NODE_MARKER_CORRUPT: spec(
    "CAIRN-NODE-0007",
    500,
    "A file in the data directory is damaged",
    "Restore the file named in the message from a backup, or start the node with an empty data directory.",
  ),
  NODE_REMOVED: spec(
    "CAIRN-NODE-0008",
    409,
    "This node was removed from the cluster",
    "An operator removed the node (`cairn ctl nodes remove`): its id and name are retired. Start it with an empty data directory and a new node-name to add a new node.",
  ),

  // ---- API: request validation, generic HTTP answers ------------------------------------------
  API_VALIDATION: spec(
    "CAIRN-API-0001",
    422,
    "The request does not match the API schema",
    "Correct the field named in the message; the OpenAPI document at /openapi.json describes every request.",
  ),
  API_NOT_FOUND: spec(
    "CAIRN-API-0002",
    404,
    "No such route",
    "Check the path and method against the OpenAPI document at /openapi.json.",
  ),
  API_MALFORMED_BODY: spec(
    "CAIRN-API-0003",
    400,
    "The request body cannot be parsed",
    "Send a JSON body with Content-Type: application/json.",
  ),
  API_BODY_TOO_LARGE: spec(
    "CAIRN-API-0004",
    413,
    "The request body is larger than allowed",
    "Send a smaller body; the limit is a configuration value named in the message.",
  ),
  API_UNAUTHORIZED: spec(
    "CAIRN-API-0006",
    401,
    "The request lacks the admin token or carries a wrong one",
    "Send `Authorization: Bearer <admin.token>`; with cairn ctl use --token or CAIRN_TOKEN.",
  ),
  API_INTERNAL: spec(
    "CAIRN-API-0005",
    500,
    "An internal error occurred",
    "This is a bug in cairn. The node log holds the details; please report it.",
  ),

  // ---- NET: peer fabric -------------------------------------------------------------------------
  NET_CLUSTER_MISMATCH: spec(
    "CAIRN-NET-0001",
    403,
    "The peer belongs to another cluster",
    "Check that every node is configured with the same cluster name and joined the same cluster.",
  ),
  NET_STALE_GENERATION: spec(
    "CAIRN-NET-0002",
    409,
    "The request came from an older generation of the sending node",
    "Nothing to do: the sender restarted and its newer generation will retry.",
  ),
  NET_MISSING_HEADERS: spec(
    "CAIRN-NET-0003",
    400,
    "A peer request lacks the cluster or sender headers",
    "Peer endpoints are for cairn nodes only; use the admin API instead.",
  ),
  NET_UNKNOWN_METHOD: spec(
    "CAIRN-NET-0004",
    404,
    "The peer does not know this RPC method",
    "Run the same cairn version on every node.",
  ),
  NET_DEADLINE_EXCEEDED: spec(
    "CAIRN-NET-0005",
    504,
    "The peer did not answer before the deadline",
    "The peer may be overloaded, paused or partitioned away; the caller retries where that is safe.",
  ),
  NET_UNREACHABLE: spec(
    "CAIRN-NET-0006",
    503,
    "The peer cannot be reached",
    "Check that the peer runs and that its fabric address is reachable from this node.",
  ),
  NET_OVERLOADED: spec(
    "CAIRN-NET-0007",
    503,
    "Too many requests are in flight to this peer",
    "Retry later; the bound is net.max-in-flight-per-peer.",
  ),
  NET_BAD_REQUEST: spec(
    "CAIRN-NET-0008",
    400,
    "The RPC request body does not match the method's schema",
    "Run the same cairn version on every node.",
  ),
  NET_REQUEST_TOO_LARGE: spec(
    "CAIRN-NET-0009",
    413,
    "The RPC request body is larger than allowed",
    "Raise net.max-request-bytes on the receiving node, or send smaller batches.",
  ),
  NET_REMOTE_ERROR: spec(
    "CAIRN-NET-0010",
    502,
    "The peer answered with an unexpected error",
    "Look at the peer's log for the cause.",
  ),
  NET_UNAUTHORIZED: spec(
    "CAIRN-NET-0014",
    403,
    "The peer request lacks the cluster secret or carries a wrong one",
    "Give every node the same net.cluster-secret.",
  ),
  NET_BAD_RESPONSE: spec(
    "CAIRN-NET-0011",
    502,
    "The peer's RPC response cannot be decoded or does not match the method's schema",
    "Run the same cairn version on every node; if they match, this is a bug: report it with both logs.",
  ),
  NET_HANDLER_FAILED: spec(
    "CAIRN-NET-0012",
    500,
    "The RPC handler on the peer failed unexpectedly",
    "This is a bug in cairn. The peer's log holds the details; please report it.",
  ),
  NET_SHUTTING_DOWN: spec(
    "CAIRN-NET-0013",
    503,
    "The fabric endpoint is shutting down",
    "Nothing to do if the node is stopping; otherwise retry against another node.",
  ),

  // ---- METADATA: the metadata store and its servers --------------------------------------------
  METADATA_NOT_FOUND: spec(
    "CAIRN-METADATA-0001",
    404,
    "No such metadata key",
    "Check the key; `cairn ctl metadata list` shows every key.",
  ),
  METADATA_VERSION_MISMATCH: spec(
    "CAIRN-METADATA-0002",
    412,
    "The key's version is not the one the request expected",
    "Read the key again (its current version is in `currentVersion`), re-apply your change, and retry with that version.",
  ),
  METADATA_EXISTS: spec(
    "CAIRN-METADATA-0003",
    412,
    "The key already exists",
    "Use If-Match with the current version (in `currentVersion`) to overwrite it.",
  ),
  METADATA_VALUE_TOO_LARGE: spec(
    "CAIRN-METADATA-0004",
    413,
    "The metadata value is larger than allowed",
    "Store less in one key; the limit is metadata-server.max-value-bytes.",
  ),
  METADATA_INVALID_KEY: spec(
    "CAIRN-METADATA-0005",
    400,
    "The metadata key is not valid",
    "Keys are 1-256 characters of letters, digits and . _ - / :",
  ),
  METADATA_INVALID_VALUE: spec(
    "CAIRN-METADATA-0015",
    400,
    "The metadata value is not a storable JSON document",
    "Send a JSON document nested at most 64 levels deep.",
  ),
  METADATA_INVALID_PRECONDITION: spec(
    "CAIRN-METADATA-0006",
    400,
    "The precondition header is not valid",
    "Send If-Match with a version number (e.g. If-Match: 3 or \"3\"), or If-None-Match: * for create-only.",
  ),
  METADATA_UNAVAILABLE: spec(
    "CAIRN-METADATA-0007",
    503,
    "The metadata cluster cannot serve the request right now",
    "It has no leader or no quorum at the moment; retry shortly. `cairn ctl metadata-server list` shows its members.",
  ),
  METADATA_NOT_MEMBER: spec(
    "CAIRN-METADATA-0008",
    503,
    "This node is not a member of the metadata cluster",
    "Send the request to a member (see `leaderHint`), or use the metadata client, which does so by itself.",
  ),
  METADATA_INDETERMINATE: spec(
    "CAIRN-METADATA-0009",
    504,
    "The write may or may not have been applied",
    "Read the key to learn whether the write took effect before retrying; conditional writes make retries safe.",
  ),
  METADATA_ILLEGAL_TRANSITION: spec(
    "CAIRN-METADATA-0010",
    409,
    "That metadata-server state change is not allowed",
    "`cairn ctl metadata-server list` shows each node's state; the message says what is possible.",
  ),
  METADATA_LAST_MEMBER: spec(
    "CAIRN-METADATA-0011",
    409,
    "The last member of the metadata cluster cannot be removed",
    "Add another member first (`cairn ctl metadata-server add <node>`).",
  ),
  METADATA_STORAGE_MISMATCH: spec(
    "CAIRN-METADATA-0012",
    409,
    "A node came back with metadata storage other than the one it was a member with",
    "The node lost its disk. Remove it from the metadata cluster (`cairn ctl metadata-server remove`) and add it again.",
  ),
  METADATA_STORAGE_CORRUPT: spec(
    "CAIRN-METADATA-0013",
    500,
    "The metadata server's storage is damaged",
    "The message names the file. Restore it from a backup, or wipe this node's metadata storage and re-add the node.",
  ),
  METADATA_STORE_SEALED: spec(
    "CAIRN-METADATA-0014",
    500,
    "The local metadata store was sealed after migration to the replicated server",
    "Run the node with the replicated metadata server (the default); the sealed store is kept only as a record.",
  ),
  METADATA_INVALID_LIST: spec(
    "CAIRN-METADATA-0017",
    400,
    "The listing request is invalid",
    "Pass `limit` as an integer from 1 to 10000, and `after` as the `next` cursor a previous page returned (or a key).",
  ),
  METADATA_SNAPSHOT_TRANSFER: spec(
    "CAIRN-METADATA-0016",
    409,
    "A metadata snapshot transfer is unknown here, expired or refused",
    "Nothing to do: the receiving member starts the transfer again (from the current leader). If it repeats, check that the members can reach each other and see the log of the serving member.",
  ),

  // ---- LOG: logs, loglets and log-servers -----------------------------------------------------
  LOG_SEALED: spec(
    "CAIRN-LOG-0001",
    409,
    "The loglet is sealed and accepts no more appends",
    "Append to the log again: bifrost moves to the new tail segment. If none appears, the log is being reconfigured; see `cairn ctl logs describe`.",
  ),
  LOG_SEQUENCER_FENCED: spec(
    "CAIRN-LOG-0002",
    409,
    "The log-server already accepted another sequencer for this loglet",
    "Nothing to do: this sequencer is stale (its node restarted or the loglet moved); the segment is sealed and a new one gets a new sequencer.",
  ),
  LOG_TRIMMED: spec(
    "CAIRN-LOG-0003",
    410,
    "The requested records were trimmed",
    "Read from the trim point onwards, or restore the state from a snapshot that covers the trimmed range.",
  ),
  LOG_UNKNOWN_LOGLET: spec(
    "CAIRN-LOG-0004",
    404,
    "No such loglet",
    "Check the log id and segment index (`cairn ctl logs describe` lists the segments of a log).",
  ),
  LOG_MALFORMED_REQUEST: spec(
    "CAIRN-LOG-0005",
    400,
    "A log-server request is malformed",
    "Run the same cairn version on every node; if they match, this is a bug: report it with both logs.",
  ),
  LOG_STORE_CORRUPT: spec(
    "CAIRN-LOG-0006",
    500,
    "The log-server's record store file is damaged",
    "Stop the node and restore the file named in the message from a backup. Removing it loses this server's copies: the other replicas keep the loglets readable, and the node must restart as a log-server that lost data.",
  ),
  LOG_STORE_UNAVAILABLE: spec(
    "CAIRN-LOG-0007",
    503,
    "The log-server's record store cannot write",
    "Check the disk of the node named in the message (space, permissions, I/O errors in the system log). Once the fault is gone the store re-enables itself at its next recovery probe (log-server.recovery-probe-*-delay-ms; watch cairn_logserver_store_writable); no restart is needed.",
  ),
  LOG_WRITE_UNAVAILABLE: spec(
    "CAIRN-LOG-0008",
    503,
    "Too few log-servers of the nodeset accept writes for this loglet",
    "Bring the log-servers back or reconfigure the log onto a nodeset of available nodes (`cairn ctl logs reconfigure`).",
  ),
  LOG_BACKPRESSURE: spec(
    "CAIRN-LOG-0009",
    503,
    "Too many appends are in flight for this loglet",
    "Retry after the earlier appends complete; the bounds are bifrost.replicated-loglet.max-inflight-batches and max-inflight-bytes.",
  ),
  LOG_RECOVERY_FAILED: spec(
    "CAIRN-LOG-0010",
    503,
    "Sealing the loglet, finding its tail or repairing it did not complete",
    "Too few log-servers answered; bring them back and retry. The loglet stays safe meanwhile: nothing new is acknowledged.",
  ),
  LOG_STORE_CLOSED: spec(
    "CAIRN-LOG-0011",
    503,
    "The log-server's record store is closed",
    "Nothing to do if the node is stopping; otherwise send the request to another log-server.",
  ),
  LOG_LOGLET_FULL: spec(
    "CAIRN-LOG-0012",
    409,
    "The loglet reached its maximum offset",
    "Nothing to do: the segment is sealed and the log continues in a new segment.",
  ),
  LOG_UNKNOWN_LOG: spec(
    "CAIRN-LOG-0013",
    404,
    "No such log",
    "Check the log id: `cairn ctl logs list` shows every log (one per partition).",
  ),
  LOG_TAIL_UNKNOWN: spec(
    "CAIRN-LOG-0020",
    503,
    "The log's tail cannot be determined right now",
    "Its sequencer is unreachable or was just replaced; retry in a moment (the controller moves the log to a new sequencer).",
  ),
  LOG_APPEND_INDETERMINATE: spec(
    "CAIRN-LOG-0014",
    503,
    "The append's outcome is unknown: its records may or may not be in the log",
    "The sequencer was lost while the batch was in flight. Read the log from before the append to see whether the records are there before appending them again (or make records idempotent).",
  ),
  LOG_CHAIN_CONFLICT: spec(
    "CAIRN-LOG-0015",
    409,
    "The log's chain of segments changed while the operation was in progress",
    "Look at the log again (`cairn ctl logs describe`) and retry if the operation is still needed.",
  ),
  LOG_INVALID_RECONFIGURATION: spec(
    "CAIRN-LOG-0016",
    400,
    "The requested segment placement is not possible",
    "Name log-server nodes that are alive (`cairn ctl logs describe` and `cairn ctl status` show them) and a replication no larger than the nodeset.",
  ),
  LOG_CHAIN_INVALID: spec(
    "CAIRN-LOG-0017",
    500,
    "The logs metadata document is invalid",
    "The message names the field. Restore the `logs` metadata key to a valid document (it was probably written by hand).",
  ),
  LOG_BATCH_TOO_LARGE: spec(
    "CAIRN-LOG-0018",
    413,
    "The append batch has too many records or bytes",
    "Split the batch; the bounds are bifrost.max-append-records and bifrost.max-append-bytes.",
  ),
  LOG_INVALID_RECORD: spec(
    "CAIRN-LOG-0019",
    400,
    "A record in the request cannot be decoded",
    "Send records as UTF-8 strings, or as base64 with \"encoding\": \"base64\".",
  ),
  LOG_STORE_EMPTY: spec(
    "CAIRN-LOG-0021",
    500,
    "The log-server's record store file is empty or gone, but this node belongs to a provisioned cluster and had one",
    "The file named in the message was truncated, replaced or removed: the records this server acknowledged are not in it. Stop the node and restore the file (and its -wal file) from a backup. Without a backup, first move every log off this node (`cairn ctl logs reconfigure <log> --nodeset …` without it, for each log whose tail segment lists it), so the other replicas seal and repair those loglets; then delete the store file, its -wal file and the `.created` marker beside it, and start the node: it starts with an empty store in data-loss mode (CAIRN-LOG-0025), which it leaves once re-replication has moved every segment that names it.",
  ),

  LOG_REREPLICATION_SOURCE_MISSING: spec(
    "CAIRN-LOG-0022",
    503,
    "Re-replication found records of a sealed segment on none of its reachable log-servers",
    "The nodeset members that hold them are down or lost their data. Bring them back; re-replication retries every controller round. If they are gone for good, those records are lost: the message names the loglet and the first missing offset.",
  ),
  LOG_REREPLICATION_TARGET_FAILED: spec(
    "CAIRN-LOG-0023",
    503,
    "A log-server refused or failed to store re-replicated records",
    "The segment's nodeset is left unchanged (copies count only once durable); re-replication retries with other log-servers on the next controller round. Check the named node's store (`cairn ctl status`).",
  ),
  LOG_REREPLICATION_NO_TARGETS: spec(
    "CAIRN-LOG-0024",
    409,
    "Not enough live log-servers outside the segment's nodeset to raise its copies",
    "Start or add log-servers (the segment needs as many as the message says), or lower the log's replication; re-replication resumes by itself once they answer.",
  ),

  LOG_STORE_RECOVERING: spec(
    "CAIRN-LOG-0025",
    503,
    "The log-server store is recovering from data loss",
    "The store came back empty (wiped, or its file and marker removed) in a provisioned data directory. Nothing to do if other log-servers live: the log controller moves open segments off this node and re-replicates sealed ones elsewhere, then the node leaves data-loss mode by itself (`cairn ctl logs describe` shows under-replicated records; the node's /ready says when). If no other copy exists, those records are lost.",
  ),

  // ---- TRIM: automatic and manual log trimming -------------------------------------------------
  TRIM_PERSISTED_LSN_DISABLED: spec(
    "CAIRN-TRIM-0001",
    500,
    "The persisted-lsn trim policy turned itself off: the cluster has more than one node",
    "Trimming up to the processors' durable LSNs is safe only while one node holds everything. Configure a snapshot repository (`[snapshots] repository`) and let the archived-lsn policy trim; nothing already trimmed is lost, but logs grow until then.",
  ),
  TRIM_NO_REPOSITORY: spec(
    "CAIRN-TRIM-0002",
    500,
    "No automatic trimming: several workers and no snapshot repository",
    "Logs grow without bound until a snapshot repository is configured (`[snapshots] repository = \"file\"` or `\"s3\"` on every node): then the archived-lsn policy trims each log up to its oldest retained snapshot.",
  ),
  TRIM_JOIN_REFUSED: spec(
    "CAIRN-TRIM-0003",
    409,
    "A worker cannot join: the persisted-lsn policy trimmed logs that no snapshot covers",
    "A new worker could not rebuild those partitions. Configure a snapshot repository on the running node (`[snapshots] repository`), take a snapshot of every partition (`cairn ctl snapshots create`), then start this node again.",
  ),
  TRIM_PAST_ARCHIVED: spec(
    "CAIRN-TRIM-0004",
    409,
    "The trim would cut records that no snapshot covers",
    "Trim at most up to the archived LSN named in the message (take a snapshot first to move it), or repeat with `--force` (API: `?force=true`) accepting that the records named in the message are gone for any processor that has not applied them.",
  ),
  TRIM_POLICY_UNUSABLE: spec(
    "CAIRN-TRIM-0005",
    500,
    "The configured trim policy cannot run in this cluster",
    "archived-lsn needs a snapshot repository (`[snapshots] repository`); persisted-lsn needs a single-node cluster. Change `trim.policy` (`auto` picks what fits) or the cluster.",
  ),

  // ---- CLUSTER: provisioning and cluster state --------------------------------------------------
  CLUSTER_NOT_PROVISIONED: spec(
    "CAIRN-CLUSTER-0001",
    503,
    "The cluster is not provisioned yet",
    "Run `cairn ctl provision` against any node (or start the node with auto-provision = true).",
  ),
  CLUSTER_ALREADY_PROVISIONED: spec(
    "CAIRN-CLUSTER-0002",
    409,
    "The cluster is already provisioned",
    "Nothing to do: `cairn ctl status` shows the cluster. Provisioning happens once per cluster.",
  ),
  CLUSTER_INVALID_PROVISION: spec(
    "CAIRN-CLUSTER-0003",
    400,
    "The provisioning parameters are not valid",
    "Correct the parameter named in the message (see `cairn ctl provision --help`).",
  ),
  CLUSTER_METADATA_UNAVAILABLE: spec(
    "CAIRN-CLUSTER-0004",
    503,
    "The metadata service has no leader or no quorum",
    "Start the metadata members that are down (`cairn ctl status` lists them) until a majority runs; nothing can be written meanwhile.",
  ),
  CLUSTER_NODE_DEAD: spec(
    "CAIRN-CLUSTER-0005",
    503,
    "A node of the cluster does not answer",
    "Restart the node named in the message, or check the network between the nodes; the cluster runs degraded meanwhile.",
  ),
  CLUSTER_LOG_NOT_WRITABLE: spec(
    "CAIRN-CLUSTER-0006",
    503,
    "A log has no writable tail segment",
    "Wait for the log controller to reconfigure the log (it needs enough live log-servers for the log's replication), or reconfigure it with `cairn ctl logs reconfigure`.",
  ),
  CLUSTER_LOG_STORE_DISABLED: spec(
    "CAIRN-CLUSTER-0007",
    503,
    "A log-server's store refuses writes",
    "A write to the node's record store failed (disk full or I/O error): fix the disk of the node named in the message; its store re-enables itself at its next recovery probe (log-server.recovery-probe-*-delay-ms).",
  ),
  CLUSTER_SINGLE_REPLICA: spec(
    "CAIRN-CLUSTER-0008",
    500,
    "Data is kept in one copy only: nothing is fault tolerant",
    "Losing the node (or its disk) that holds a single-replica log loses its data. Run three or more nodes and use replication 2 or more.",
  ),
  CLUSTER_SINGLE_METADATA_MEMBER: spec(
    "CAIRN-CLUSTER-0009",
    500,
    "The metadata service has a single member",
    "Losing that node stops the cluster. Start more nodes with the metadata-server role: they join by themselves (auto-join).",
  ),
  CLUSTER_METADATA_MEMBER_DOWN: spec(
    "CAIRN-CLUSTER-0010",
    503,
    "A metadata member does not answer",
    "Restart the member named in the message: the metadata service keeps its quorum, but one more failure would stop it.",
  ),
  CLUSTER_REMOVE_METADATA_MEMBER: spec(
    "CAIRN-CLUSTER-0011",
    409,
    "The node is a member of the metadata cluster and cannot be removed",
    "Remove it from the metadata cluster first (`cairn ctl metadata-server remove <node>`), then remove the node.",
  ),
  CLUSTER_REMOVE_HOLDS_LOG: spec(
    "CAIRN-CLUSTER-0012",
    409,
    "The node sequences a log or holds the only copy of a log's records",
    "Wait for the log controller to move the log's sequencer and re-replicate its sealed segments (`cairn ctl logs list`), or trim the log; then remove the node.",
  ),
  CLUSTER_REMOVE_PARTITION_LEADER: spec(
    "CAIRN-CLUSTER-0013",
    409,
    "The node leads a partition",
    "Wait until the partition controller has moved its leaderships (`cairn ctl partitions list`): it does so once the node is dead.",
  ),
  CLUSTER_REMOVE_NODE_ALIVE: spec(
    "CAIRN-CLUSTER-0014",
    409,
    "The node still answers: only a stopped node can be removed",
    "Stop the node's process first; the cluster moves what it held, then remove it.",
  ),
  CLUSTER_UNKNOWN_NODE: spec(
    "CAIRN-CLUSTER-0015",
    404,
    "No node of the cluster has this id or name",
    "`cairn ctl nodes list` shows every node with its id (N<x>) and name.",
  ),
  CLUSTER_INVALID_SETTINGS: spec(
    "CAIRN-CLUSTER-0016",
    400,
    "The cluster settings are not valid",
    "replication is 1..9; nodeset-size is 0 (automatic) or at least the replication; give at least one of them.",
  ),
  CLUSTER_REPLICATION_UNSATISFIABLE: spec(
    "CAIRN-CLUSTER-0017",
    409,
    "The live log-server nodes cannot keep this many copies",
    "Start more log-server nodes (`cairn ctl status` shows which answer), or ask for a replication no larger than the live log-servers.",
  ),
  CLUSTER_SETTINGS_CONFLICT: spec(
    "CAIRN-CLUSTER-0018",
    409,
    "The cluster settings or nodes configuration changed concurrently",
    "Another operator changed them at the same time: read them again (`cairn ctl config show`) and retry.",
  ),
  CLUSTER_PARTITION_LEADERLESS: spec(
    "CAIRN-CLUSTER-0020",
    503,
    "A partition has no leader answering, or its processor stopped",
    "Writes and reads of its objects wait or fail with CAIRN-PARTITION-0002 meanwhile. A leader moves by itself within a second or two of a node's death; if it does not, check that a live worker is placed for it (`cairn ctl partitions list`). A leader whose processor stopped (its store failed, it is being bootstrapped) hands the partition to a running follower that applied past it within a few seconds, when there is one (replication 2 or more); a record no copy can apply stops every copy and needs an operator: the processor's log line says why.",
  ),

  // ---- PARTITION: partition processors, leadership and placement --------------------------------
  PARTITION_NOT_LEADER: spec(
    "CAIRN-PARTITION-0001",
    503,
    "This node does not lead the partition (any more)",
    "Retry after the delay in Retry-After: the request is sent to the partition's current leader once one is known (`cairn ctl partitions list` shows leaders).",
  ),
  PARTITION_UNAVAILABLE: spec(
    "CAIRN-PARTITION-0002",
    503,
    "The partition has no leader right now",
    "Retry after the delay in Retry-After; a new leader is placed within seconds while a worker is alive. If it persists, check `cairn ctl partitions list` and that worker nodes are running.",
  ),
  PARTITION_STOPPED: spec(
    "CAIRN-PARTITION-0003",
    500,
    "The partition processor stopped: it met a record it cannot apply, or its store failed",
    "The log holds a record kind or format this build does not know (written by a newer cairn), or its log was trimmed past what the store holds: upgrade this node to the version that wrote it; skipping the record would make replicas diverge. If the store failed (disk full, I/O error: see the node's log), free space or fix the disk: the worker opens the store again by itself (worker.store-failure-retry-ms).",
  ),
  PARTITION_WRITE_INDETERMINATE: spec(
    "CAIRN-PARTITION-0004",
    504,
    "The write may or may not have been applied",
    "Read the object to see whether it was applied, or retry with the same Idempotency-Key: a retry with the key applies at most once.",
  ),

  PARTITION_OVERLOADED: spec(
    "CAIRN-PARTITION-0005",
    503,
    "The partition's leader has too many writes in flight",
    "Retry after the delay in Retry-After, or send fewer concurrent writes to the same partition; the bound is worker.max-pending-proposals.",
  ),

  // ---- SNAPSHOT: the snapshot repository, export/import of partition stores, snapshot jobs -------
  SNAPSHOT_NO_REPOSITORY: spec(
    "CAIRN-SNAPSHOT-0001",
    409,
    "No snapshot repository is configured",
    "Set snapshots.repository to \"file\" (with snapshots.path, shared by every node, or empty for <data-dir>/snapshots) or \"s3\" (with snapshots.s3-endpoint, s3-bucket and credentials) on every node, then restart them.",
  ),
  SNAPSHOT_REPOSITORY_UNAVAILABLE: spec(
    "CAIRN-SNAPSHOT-0002",
    503,
    "The snapshot repository cannot be reached or refused the request",
    "Check snapshots.path (exists, writable) or the S3 endpoint, bucket and credentials (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or CAIRN_SNAPSHOTS__S3_ACCESS_KEY_ID / ..._SECRET_ACCESS_KEY); the message names what failed.",
  ),
  SNAPSHOT_CHECKSUM_MISMATCH: spec(
    "CAIRN-SNAPSHOT-0003",
    500,
    "A snapshot's store does not match the checksum in its metadata.json",
    "The snapshot is damaged (partial copy, bit rot or tampering); it was not imported. Create a new snapshot (`cairn ctl snapshots create --partition <p>`) or import an older one.",
  ),
  SNAPSHOT_NOT_FOUND: spec(
    "CAIRN-SNAPSHOT-0004",
    404,
    "No such snapshot or snapshot job",
    "List snapshots with `cairn ctl snapshots list`; a job is known only to the node that ran it while it leads the metadata cluster (jobs are not kept across leader changes).",
  ),
  SNAPSHOT_NOT_CONTROLLER: spec(
    "CAIRN-SNAPSHOT-0005",
    503,
    "No node acting as cluster controller answered the snapshot request",
    "Retry in a second: the cluster controller runs on the metadata leader, which is being elected or cannot be reached (`cairn ctl status`).",
  ),
  SNAPSHOT_INVALID_REQUEST: spec(
    "CAIRN-SNAPSHOT-0006",
    400,
    "The snapshot request names partitions that do not exist",
    "Name partitions between 0 and the cluster's partition count minus one (`cairn ctl partitions list`), or none for all.",
  ),
  SNAPSHOT_FAILED: spec(
    "CAIRN-SNAPSHOT-0007",
    500,
    "Creating the snapshot failed",
    "The message names the cause (the store export, the repository, the partition's leadership); nothing partial was published. The job retries with backoff up to snapshots.max-attempts; run `cairn ctl snapshots create` again after fixing the cause.",
  ),
  SNAPSHOT_INVALID_METADATA: spec(
    "CAIRN-SNAPSHOT-0008",
    500,
    "A snapshot's metadata.json or latest.json is unreadable or inconsistent",
    "The repository holds an object cairn did not write or a damaged one; remove it (the message names it) or create a new snapshot.",
  ),
  SNAPSHOT_JOB_LIMIT: spec(
    "CAIRN-SNAPSHOT-0009",
    429,
    "Too many snapshot jobs are running",
    "Wait for a running job to finish (`GET /v1/snapshots/jobs/{id}`); the bound is snapshots.max-running-jobs.",
  ),

  SNAPSHOT_BOOTSTRAP_IMPOSSIBLE: spec(
    "CAIRN-SNAPSHOT-0010",
    500,
    "A partition's log is trimmed past its store and neither a snapshot nor a peer covers the gap",
    "Configure this node with the snapshot repository the cluster writes to (snapshots.repository and snapshots.path or s3-*) and restart it, or create a snapshot of the partition on a node that holds its state (`cairn ctl snapshots create --partition <p>`), or bring back a node that holds the partition (its store is then copied from it); the processor retries the bootstrap by itself once one exists.",
  ),
  SNAPSHOT_PEER_TRANSFER: spec(
    "CAIRN-SNAPSHOT-0011",
    503,
    "A partition store could not be copied from a peer",
    "The message names the peer and the cause (it does not hold the partition, serves too many transfers, or the transfer expired after snapshots.peer-transfer-idle-timeout-ms); the bootstrapping node tries the other peers and retries by itself.",
  ),

  // ---- STATE: the data plane's object state API -------------------------------------------------
  STATE_NOT_FOUND: spec("CAIRN-STATE-0001", 404, "No such object or state entry", "Check the service, key and entry name; an object exists once something was written to it."),
  STATE_VERSION_MISMATCH: spec(
    "CAIRN-STATE-0002",
    412,
    "The object is not at the version given in If-Match",
    "Read the object again (its current version is in the answer and the ETag header) and retry with that version.",
  ),
  STATE_VALUE_TOO_LARGE: spec(
    "CAIRN-STATE-0003",
    413,
    "The value or request body is larger than the data plane accepts",
    "Keep values under ingress.max-value-bytes (and a PATCH under ingress.max-body-bytes), or raise those limits.",
  ),
  STATE_IDEMPOTENCY_CONFLICT: spec(
    "CAIRN-STATE-0004",
    422,
    "The Idempotency-Key was used before with a different request",
    "Use a new Idempotency-Key for a different request; reuse a key only to retry exactly the same request.",
  ),
  STATE_INVALID_REQUEST: spec(
    "CAIRN-STATE-0005",
    400,
    "The request is malformed (service, key or entry name, header or body)",
    "Service names match [A-Za-z0-9_.-]{1,128}; keys and entry names are 1..512 bytes without control characters; If-Match holds an object version (a non-negative integer); a PATCH body is {\"set\": {name: value}, \"delete\": [names]}.",
  ),

  // ---- DEPLOY: service deployments (discovery of SDK endpoints) and the schema registry ----------
  DEPLOY_INVALID_URI: spec(
    "CAIRN-DEPLOY-0001",
    400,
    "The deployment URI cannot be used",
    "Give an absolute http:// or https:// URI of the SDK endpoint (for example http://127.0.0.1:9080), with no query or fragment.",
  ),
  DEPLOY_UNREACHABLE: spec(
    "CAIRN-DEPLOY-0002",
    400,
    "The deployment's endpoint did not answer the discovery request",
    "Check that the service process is running and listening on that address and port, reachable from every cairn node; an HTTP/1.1-only endpoint behind a proxy may need use_http_11 (--http1.1).",
  ),
  DEPLOY_NOT_RESTATE: spec(
    "CAIRN-DEPLOY-0003",
    400,
    "The URI does not serve a Restate SDK endpoint",
    "Point the URI at the endpoint the Restate SDK serves (its GET {uri}/discover answers a manifest); keep any path prefix the endpoint is mounted under.",
  ),
  DEPLOY_UNSUPPORTED_VERSION: spec(
    "CAIRN-DEPLOY-0004",
    400,
    "The endpoint speaks no manifest or service-protocol version cairn supports",
    "cairn reads endpoint manifests v2-v4 and speaks service protocol V5-V7: use a Restate SDK of that generation (for TypeScript, @restatedev/restate-sdk 1.10 or newer).",
  ),
  DEPLOY_INVALID_MANIFEST: spec(
    "CAIRN-DEPLOY-0005",
    400,
    "The endpoint's manifest is invalid",
    "Fix the service definition named in the message (names must match the Restate patterns, handler types must suit the service type), restart the endpoint and register it again.",
  ),
  DEPLOY_RESERVED_NAME: spec(
    "CAIRN-DEPLOY-0006",
    400,
    "A service name clashes with one of cairn's own data-plane paths",
    "Rename the service: v1, restate, openapi.json, openapi-raw.json, metrics and health are paths cairn's data plane already serves.",
  ),
  DEPLOY_SERVICE_TYPE_CHANGED: spec(
    "CAIRN-DEPLOY-0007",
    409,
    "The registration would change the type of a registered service",
    "Changing a service's type (service, virtual object, workflow) breaks its in-flight invocations and state: rename the service, or register again with force if you accept that.",
  ),
  DEPLOY_NOT_FOUND: spec(
    "CAIRN-DEPLOY-0008",
    404,
    "No deployment has this id",
    "List the deployments with GET /deployments (cairn ctl deployments list) and use one of their ids.",
  ),
  DEPLOY_IN_USE: spec(
    "CAIRN-DEPLOY-0009",
    409,
    "The deployment still serves the latest revision of some services",
    "Register a newer deployment of those services first, or remove with force=true (--force), which also unregisters the services it serves.",
  ),
  DEPLOY_SERVICE_NOT_FOUND: spec(
    "CAIRN-DEPLOY-0010",
    404,
    "No registered service or handler has this name",
    "List the services with GET /services (cairn ctl services list); register the deployment that serves it first.",
  ),
  DEPLOY_REGISTRY_CONFLICT: spec(
    "CAIRN-DEPLOY-0011",
    409,
    "The schema registry kept changing while this request tried to update it",
    "Other registrations or removals are running at the same time: retry the request.",
  ),
  DEPLOY_EXISTS_CHANGED: spec(
    "CAIRN-DEPLOY-0012",
    409,
    "A deployment with this URI is registered with different services",
    "Register the changed endpoint under a new URI (a new version of the service), or register again with force=true (--force) to overwrite the deployment in place.",
  ),
  DEPLOY_INVALID_HEADERS: spec(
    "CAIRN-DEPLOY-0013",
    400,
    "An additional header cannot be sent to the endpoint",
    "Header names must be HTTP tokens and not connection-level headers (host, connection, content-length, transfer-encoding, ...); values must be printable.",
  ),
  // ---- INVOKE: Restate's ingress API on the data-plane port (0001..0049; the invoker uses 0050+) ----
  INVOKE_SERVICE_NOT_FOUND: spec(
    "CAIRN-INVOKE-0001",
    404,
    "No registered service has this name",
    "Register the deployment that serves it (`POST /deployments` on the admin API, or `cairn ctl deployments register <url>`); `GET /services` lists what is registered. Names are case-sensitive.",
  ),
  INVOKE_HANDLER_NOT_FOUND: spec(
    "CAIRN-INVOKE-0002",
    404,
    "The service has no handler with this name",
    "Check the handler name (case-sensitive) against `GET /services/{service}`; register the deployment again if the service gained the handler since.",
  ),
  INVOKE_BAD_PATH: spec(
    "CAIRN-INVOKE-0003",
    400,
    "The path is not one of the ingress API's",
    "Services: /{service}/{handler}[/send]; virtual objects and workflows: /{name}/{key}/{handler}[/send] (the key percent-encoded); results: /restate/invocation/{id}/attach|output, /restate/workflow/{name}/{key}/attach|output; awakeables: /restate/awakeables/{id}/resolve|reject.",
  ),
  INVOKE_PRIVATE_SERVICE: spec(
    "CAIRN-INVOKE-0004",
    400,
    "The service is private: only other services may call it",
    "Call it from a handler (ctx.serviceClient), or register it without `ingressPrivate` to expose it on the ingress.",
  ),
  INVOKE_BAD_DELAY: spec(
    "CAIRN-INVOKE-0005",
    400,
    "The delay is malformed or not allowed here",
    "Only sends take a delay: /{…}/{handler}/send?delay=10s. A delay is a duration such as 500ms, 10s, 1m, 1h30m or PT1S.",
  ),
  INVOKE_BAD_IDEMPOTENCY_KEY: spec(
    "CAIRN-INVOKE-0006",
    400,
    "The idempotency-key header cannot be used on this request",
    "Leave it out on a workflow's run handler (the workflow key already makes the run happen once); elsewhere keep it 1..256 characters.",
  ),
  INVOKE_INPUT_REQUIRED: spec(
    "CAIRN-INVOKE-0007",
    400,
    "The handler needs an input and the request body is empty",
    "Send the handler's input as the request body (with the client's serde, JSON by default).",
  ),
  INVOKE_BODY_TOO_LARGE: spec(
    "CAIRN-INVOKE-0008",
    413,
    "The request body is larger than the ingress accepts",
    "Keep inputs under ingress.max-body-bytes, or raise that limit on every node.",
  ),
  INVOKE_METHOD_NOT_ALLOWED: spec(
    "CAIRN-INVOKE-0009",
    405,
    "The HTTP method is not allowed on this path",
    "Handlers take GET or POST; attach and output take GET; awakeables take POST.",
  ),
  INVOKE_INVOCATION_NOT_FOUND: spec(
    "CAIRN-INVOKE-0010",
    404,
    "No invocation matches the id, idempotency key or workflow key",
    "Check the id (the x-restate-id header of the answer that started it); results are kept only for the service's retention after completion.",
  ),
  INVOKE_NOT_READY: spec(
    "CAIRN-INVOKE-0011",
    470,
    "The invocation has not completed yet",
    "Ask again later, or use /attach to wait for the result.",
  ),
  INVOKE_OUTPUT_UNSUPPORTED: spec(
    "CAIRN-INVOKE-0012",
    400,
    "The invocation keeps no output to get",
    "Only invocations started with an idempotency-key, and workflow runs, keep their output. Start it with an idempotency-key to be able to attach to it.",
  ),
  INVOKE_BAD_INVOCATION_ID: spec(
    "CAIRN-INVOKE-0013",
    400,
    "The invocation id is malformed",
    "Use the id from the x-restate-id header or the send answer's invocationId (inv_1…, 38 characters).",
  ),
  INVOKE_BAD_AWAKEABLE_ID: spec(
    "CAIRN-INVOKE-0014",
    400,
    "The awakeable id is malformed",
    "Use the id the handler got from ctx.awakeable() exactly as it is (sign_1…).",
  ),
  INVOKE_UNAVAILABLE: spec(
    "CAIRN-INVOKE-0015",
    503,
    "This node cannot serve invocations yet",
    "Retry after the delay in Retry-After: the node is starting or not provisioned (`cairn ctl status`).",
  ),
  INVOKE_STILL_RUNNING: spec(
    "CAIRN-INVOKE-0016",
    503,
    "The invocation is still running after ingress.invocation-wait-ms",
    "It goes on running. Retry the request with the same idempotency-key (the official client does) or attach to the id in x-restate-id; raise ingress.invocation-wait-ms for longer waits.",
  ),
  INVOKE_UNSUPPORTED: spec(
    "CAIRN-INVOKE-0017",
    400,
    "The request uses a Restate ingress feature cairn does not support",
    "Leave out scopes (/restate/scope/…) and x-restate-limit-key.",
  ),
  // ---- INVOKE 0060..0069: operators' actions on invocations (admin API, `cairn ctl invocations`) ----
  INVOKE_ACTION_NOT_APPLICABLE: spec(
    "CAIRN-INVOKE-0060",
    409,
    "The action does not apply to the invocation in its current status",
    "cancel and kill act on invocations that have not completed; resume on paused or backing-off ones; purge on completed ones. See its status with `cairn ctl invocations describe <id>`.",
  ),

  // ---- CTL: the operator's tool -----------------------------------------------------------------
  CTL_UNREACHABLE: spec(
    "CAIRN-CTL-0001",
    503,
    "cairn ctl cannot reach the node",
    "Check --address (or CAIRN_ADDRESS) and that the node is running.",
  ),
  CTL_BAD_RESPONSE: spec(
    "CAIRN-CTL-0002",
    502,
    "The node answered with something cairn ctl cannot read",
    "Use a cairn ctl of the same version as the node.",
  ),
  CTL_WRONG_CLUSTER: spec(
    "CAIRN-CTL-0003",
    409,
    "The node belongs to another cluster than the one cairn ctl was told to operate",
    "Check --address (or CAIRN_ADDRESS) and --cluster (or CAIRN_CLUSTER): they name nodes of different clusters.",
  ),
} as const satisfies Record<string, ErrorSpec>;

export type ErrorName = keyof typeof ERRORS;

/** A problem+json body (RFC 9457) with cairn's stable code and hint. */
export interface ProblemBody {
  type: string;
  title: string;
  status: number;
  code: string;
  detail: string;
  hint: string;
  [extension: string]: unknown;
}

/** The one error type for expected failures. Carries a catalogue entry and a specific message. */
export class CairnError extends Error {
  readonly spec: ErrorSpec;
  readonly details: Record<string, unknown>;

  constructor(name: ErrorName, message: string, details: Record<string, unknown> = {}, options?: ErrorOptions) {
    super(message, options);
    this.name = "CairnError";
    this.spec = ERRORS[name];
    this.details = details;
  }

  get code(): string {
    return this.spec.code;
  }

  get status(): number {
    return this.spec.status;
  }

  get hint(): string {
    return this.spec.hint;
  }

  toProblem(): ProblemBody {
    return {
      ...this.details,
      type: `https://cairn.dev/errors/${this.spec.code}`,
      title: this.spec.title,
      status: this.spec.status,
      code: this.spec.code,
      detail: this.message,
      hint: this.spec.hint,
    };
  }

  /** One line for a terminal: `CAIRN-X-0001: message\n  hint: ...`. */
  toDisplay(): string {
    return `error ${this.spec.code}: ${this.message}\n  hint: ${this.spec.hint}`;
  }
}

export function isCairnError(e: unknown, name?: ErrorName): e is CairnError {
  return e instanceof CairnError && (name === undefined || e.spec === ERRORS[name]);
}

/** Find the catalogue entry for a code string (for clients decoding problem bodies). */
export function specByCode(code: string): ErrorSpec | undefined {
  return Object.values(ERRORS).find((s) => s.code === code);
}

/**
 * A violated invariant is a bug: it throws and is never caught as an expected failure. A message
 * built from values is passed as a function: a template literal would be built on every call, and
 * some of these checks run per record.
 */
export function invariant(condition: unknown, message: string | (() => string)): asserts condition {
  if (!condition) {
    throw new InvariantViolation(typeof message === "string" ? message : message());
  }
}

export class InvariantViolation extends Error {
  constructor(message: string) {
    super(`invariant violated: ${message}`);
    this.name = "InvariantViolation";
  }
}
