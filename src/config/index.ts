// Public surface of the configuration module.
export { ConfigSchema, ROLES, StringEnum, defaultConfig, type Config, type IngressConfig, type NetConfig, type Role, type SnapshotsConfig, type TrimConfig, type WorkerConfig } from "./schema.ts";
export { configToToml, envKeyToPath, leafKeys, loadConfig, pathToEnvKey, schemaAt, type ConfigSources, type LoadedConfig } from "./load.ts";
export { renderConfigDocs } from "./docs.ts";
