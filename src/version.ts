// Build identity of this cairn binary. The version comes from package.json; the commit is injected
// at build time (`bun run build` defines CAIRN_BUILD_COMMIT) and is "dev" when run from source.
import pkg from "../package.json" with { type: "json" };

declare const CAIRN_BUILD_COMMIT: string | undefined;

export const VERSION: string = pkg.version;
export const BUILD_COMMIT: string = typeof CAIRN_BUILD_COMMIT === "string" ? CAIRN_BUILD_COMMIT : "dev";

export interface VersionInfo {
  version: string;
  commit: string;
  runtime: string;
}

export function versionInfo(): VersionInfo {
  return { version: VERSION, commit: BUILD_COMMIT, runtime: `bun ${Bun.version}` };
}
