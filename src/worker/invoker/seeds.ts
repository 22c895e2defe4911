// Seeds of derived invocation ids: the ingress (router.ts) and the state machine (children of calls)
// derive the same id for the same idempotency key or workflow key. Changing them orphans every
// retained idempotent result and running workflow.

/** An empty key stands for a plain service's (no key). */
export function idempotentSeed(service: string, key: string | null, handler: string, idempotencyKey: string): string {
  return `idem:${service}/${key ?? ""}/${handler}/${idempotencyKey}`;
}

export function workflowSeed(service: string, key: string): string {
  return `wf:${service}/${key}`;
}
