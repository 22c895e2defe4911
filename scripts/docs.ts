// Regenerates the generated documentation: docs/configuration.md and docs/errors.md.
import { writeFileSync } from "node:fs";
import { renderConfigDocs } from "../src/config/index.ts";
import { renderErrorDocs } from "../src/observability/errors-doc.ts";

writeFileSync("docs/configuration.md", renderConfigDocs());
writeFileSync("docs/errors.md", renderErrorDocs());
console.log("wrote docs/configuration.md and docs/errors.md");
