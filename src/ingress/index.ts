// Public surface of the ingress (the data-plane HTTP API) for the node and the CLI.
export { IngressRole, type IngressRoleDeps } from "./role.ts";
export { createIngressApp, renderDataPlaneOpenApi, dataPlaneOpenApiText, DATA_PLANE_SPEC_PATH } from "./app.ts";
