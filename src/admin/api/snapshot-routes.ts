// Snapshot routes: start a snapshot job (on the cluster controller, wherever the request arrives),
// follow its per-partition progress, and list the snapshots the repository holds.
import { Elysia, t } from "elysia";
import { Type } from "@sinclair/typebox";
import { SnapshotJobView, SnapshotRow } from "../controller/index.ts";
import { closed, models } from "./models.ts";
import type { AdminDeps } from "./deps.ts";

const CreateSnapshotsRequest = Type.Object(
  {
    partitions: Type.Optional(
      Type.Array(Type.Integer({ minimum: 0, maximum: 65_535 }), { maxItems: 65_536, uniqueItems: true, description: "Partitions to snapshot; absent or empty: all." }),
    ),
  },
  { additionalProperties: false },
);
const SnapshotList = Type.Object({ snapshots: Type.Array(SnapshotRow) }, { additionalProperties: false });

const snapshotModels = new Elysia({ name: "snapshot-models" }).model(closed({ SnapshotJob: SnapshotJobView, SnapshotList, CreateSnapshotsRequest, SnapshotRow }));

export function snapshotRoutes(deps: AdminDeps) {
  const errors = { 400: "Problem", 404: "Problem", 409: "Problem", 429: "Problem", 503: "Problem" } as const;
  return new Elysia({ name: "snapshot-routes" })
    .use(models)
    .use(snapshotModels)
    .post("/v1/snapshots", async ({ body, set }) => {
      set.status = 202;
      return deps.snapshots().create(body?.partitions ?? null);
    }, {
      parse: "json",
      body: t.Optional(CreateSnapshotsRequest),
      response: { 202: "SnapshotJob", ...errors },
      detail: {
        operationId: "createSnapshots",
        tags: ["snapshots"],
        summary: "Start a snapshot job for all partitions or a list",
        description:
          "Runs on the cluster controller (the metadata leader; other nodes forward the request). Each partition's leader exports its store as of one applied LSN and publishes it; requests run concurrently under snapshots.max-concurrent-per-node and max-concurrent-cluster, failed ones are rolled back and retried with backoff. Follow it with GET /v1/snapshots/jobs/{id}.",
      },
    })
    .get("/v1/snapshots/jobs/:id", ({ params }) => deps.snapshots().job(params.id), {
      params: t.Object({ id: t.String({ maxLength: 64, description: "The job id POST /v1/snapshots answered." }) }),
      response: { 200: "SnapshotJob", ...errors },
      detail: { operationId: "getSnapshotJob", tags: ["snapshots"], summary: "A snapshot job's state: per partition its state, LSN, bytes, duration and error" },
    })
    .get("/v1/snapshots", async ({ query }) => ({ snapshots: await deps.snapshots().list(query.partition) }), {
      query: t.Object({ partition: t.Optional(t.Integer({ minimum: 0, maximum: 65_535, description: "Only this partition's snapshots." })) }),
      response: { 200: "SnapshotList", ...errors },
      detail: { operationId: "listSnapshots", tags: ["snapshots"], summary: "Snapshots in the repository, oldest first per partition; `latest` marks what latest.json names" },
    });
}
