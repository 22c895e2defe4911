import { describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "smol-toml";
import { configToToml, defaultConfig, leafKeys, loadConfig, pathToEnvKey, renderConfigDocs } from "../../src/config/index.ts";
import { CairnError } from "../../src/observability/errors.ts";
import { tempDir } from "../helpers/cairn-process.ts";

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof CairnError) return `${e.code} ${e.message}`;
    throw e;
  }
  throw new Error("expected a CairnError");
}

function tomlFile(text: string): string {
  const p = join(tempDir(), "cairn.toml");
  writeFileSync(p, text);
  return p;
}

describe("configuration sources", () => {
  test("built-in defaults apply when nothing is configured", () => {
    const { config } = loadConfig({}, "/srv");
    expect(config.admin["bind-address"]).toBe("127.0.0.1:9070");
    expect(config.net["bind-address"]).toBe("127.0.0.1:5122");
    expect(config.ingress["bind-address"]).toBe("127.0.0.1:8080");
    expect(config.roles).toEqual(["metadata-server", "log-server", "worker", "admin", "ingress"]);
    expect(config["base-dir"]).toBe(`/srv/cairn-data/${config["node-name"]}`);
    expect(config["node-name"].length).toBeGreaterThan(0);
  });

  test("file < environment < flags, each overriding only what it sets", () => {
    const file = tomlFile('node-name = "from-file"\ncluster-name = "c-file"\n[net]\nrequest-timeout-ms = 111\nconnect-timeout-ms = 222\n');
    const { config, origins } = loadConfig({
      configFile: file,
      env: { CAIRN_CLUSTER_NAME: "c-env", CAIRN_NET__REQUEST_TIMEOUT_MS: "333", HOME: "/x" },
      overrides: [["net.request-timeout-ms", "444"]],
    });
    expect(config["node-name"]).toBe("from-file");
    expect(config["cluster-name"]).toBe("c-env");
    expect(config.net["connect-timeout-ms"]).toBe(222);
    expect(config.net["request-timeout-ms"]).toBe(444);
    expect(origins.get("net.request-timeout-ms")).toBe("command-line flag");
    expect(origins.get("cluster-name")).toBe("environment variable CAIRN_CLUSTER_NAME");
  });

  test("lists come from comma-separated environment values", () => {
    const { config } = loadConfig({ env: { CAIRN_ROLES: "admin, worker" } });
    expect(config.roles).toEqual(["admin", "worker"]);
  });

  test("an unknown key is refused in every source, naming the key", () => {
    expect(codeOf(() => loadConfig({ configFile: tomlFile("[net]\nbind-adress = '127.0.0.1:1'\n") }))).toMatch(
      /^CAIRN-CONFIG-0002 .*'net\.bind-adress'.*bind-address/,
    );
    expect(codeOf(() => loadConfig({ configFile: tomlFile("colour = 1\n") }))).toMatch(/^CAIRN-CONFIG-0002 .*'colour'/);
    expect(codeOf(() => loadConfig({ env: { CAIRN_NET__NOPE: "1" } }))).toMatch(/^CAIRN-CONFIG-0005 .*CAIRN_NET__NOPE/);
    expect(codeOf(() => loadConfig({ overrides: [["admin.port", "1"]] }))).toMatch(/^CAIRN-CONFIG-0002 .*'admin\.port'/);
  });

  test("a wrong type or range names the key, the value and what was expected", () => {
    expect(codeOf(() => loadConfig({ configFile: tomlFile("[net]\nrequest-timeout-ms = 'soon'\n") }))).toMatch(
      /^CAIRN-CONFIG-0001 .*'net\.request-timeout-ms' has value "soon", expected integer/,
    );
    expect(codeOf(() => loadConfig({ overrides: [["net.request-timeout-ms", "0"]] }))).toMatch(/expected integer >= 1/);
    expect(codeOf(() => loadConfig({ env: { CAIRN_SHUTDOWN_TIMEOUT_MS: "12s" } }))).toMatch(
      /^CAIRN-CONFIG-0005 .*CAIRN_SHUTDOWN_TIMEOUT_MS.*"12s", expected an integer/,
    );
    expect(codeOf(() => loadConfig({ overrides: [["roles", "admin,chef"]] }))).toMatch(/^CAIRN-CONFIG-0001 .*roles/);
    expect(codeOf(() => loadConfig({ overrides: [["admin.bind-address", "localhost"]] }))).toMatch(/admin\.bind-address/);
    expect(codeOf(() => loadConfig({ overrides: [["admin.bind-address", "127.0.0.1:70000"]] }))).toMatch(/port 70000/);
  });

  test("an unparsable or missing file is reported with its path", () => {
    expect(codeOf(() => loadConfig({ configFile: tomlFile("[net\n") }))).toMatch(/^CAIRN-CONFIG-0003 .*not valid TOML/);
    expect(codeOf(() => loadConfig({ configFile: "/nonexistent/cairn.toml" }))).toMatch(/^CAIRN-CONFIG-0003 .*\/nonexistent\/cairn\.toml/);
  });

  test("impossible combinations are refused", () => {
    expect(
      codeOf(() => loadConfig({ overrides: [["admin.bind-address", "127.0.0.1:5000"], ["net.bind-address", "127.0.0.1:5000"]] })),
    ).toMatch(/^CAIRN-CONFIG-0004 .*both use port 5000/);
    expect(
      codeOf(() => loadConfig({ overrides: [["net.heartbeat-interval-ms", "500"], ["net.heartbeat-timeout-ms", "500"]] })),
    ).toMatch(/^CAIRN-CONFIG-0004 .*heartbeat-timeout-ms/);
    // Port 0 never conflicts: every server gets its own free port.
    loadConfig({ overrides: [["admin.bind-address", "127.0.0.1:0"], ["net.bind-address", "127.0.0.1:0"]] });
  });

  test("binding beyond loopback requires the admin token and the cluster secret", () => {
    expect(codeOf(() => loadConfig({ overrides: [["admin.bind-address", "0.0.0.0:9070"]] }))).toMatch(/^CAIRN-CONFIG-0004 .*admin\.token/);
    expect(codeOf(() => loadConfig({ overrides: [["net.bind-address", "10.1.2.3:5122"]] }))).toMatch(/^CAIRN-CONFIG-0004 .*net\.cluster-secret/);
    loadConfig({ overrides: [["admin.bind-address", "0.0.0.0:9070"], ["admin.token", "s3cret"]] });
    loadConfig({ overrides: [["net.bind-address", "10.1.2.3:5122"], ["net.cluster-secret", "s3cret"]] });
    loadConfig({ overrides: [["admin.bind-address", "127.0.0.2:9070"], ["net.bind-address", "localhost:5122"]] });
  });

  test("the dumped TOML is itself a valid config that loads to the same values", () => {
    const { config } = loadConfig({ overrides: [["node-name", "n7"], ["net.request-timeout-ms", "1234"]] });
    const text = configToToml(config);
    expect(parse(text) as unknown).toEqual(config);
    const again = loadConfig({ configFile: tomlFile(text) }).config;
    expect(again).toEqual(config);
  });

  test("environment variable names follow the documented mapping", () => {
    expect(pathToEnvKey("net.bind-address")).toBe("CAIRN_NET__BIND_ADDRESS");
    expect(pathToEnvKey("node-name")).toBe("CAIRN_NODE_NAME");
    for (const key of leafKeys()) {
      const { config } = loadConfig({ env: { [pathToEnvKey(key)]: String(valueAt(defaultConfig(), key)) } });
      expect(config).toBeDefined();
    }
  });
});

function valueAt(obj: unknown, key: string): unknown {
  const v = key.split(".").reduce<unknown>((o, k) => (o as Record<string, unknown>)[k], obj);
  return Array.isArray(v) ? v.join(",") : v;
}

describe("docs/configuration.md", () => {
  test("is generated from the schema and current (run `bun run docs` if this fails)", () => {
    const onDisk = readFileSync(join(import.meta.dir, "../../docs/configuration.md"), "utf8");
    expect(onDisk).toBe(renderConfigDocs());
  });

  test("lists every key", () => {
    const doc = renderConfigDocs();
    for (const key of leafKeys()) expect(doc).toContain(`\`${key}\``);
  });
});
