import { describe, expect, test } from "bun:test";
import { autoReplication } from "../../src/node/provision.ts";

describe("provisioning without a replication asked for", () => {
  test("picks what the cluster's size allows: one copy for one or two nodes, a majority-safe number beyond, at most 3", () => {
    expect([0, 1, 2, 3, 4, 5, 6, 9].map(autoReplication)).toEqual([1, 1, 1, 2, 2, 3, 3, 3]);
  });
});
