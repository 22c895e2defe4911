// Structured logging: JSON lines (pino) on standard output, one logger per node with the node's
// name bound, children per component. Tests can pass `destination` to capture or silence it.
import pino, { type DestinationStream, type Logger } from "pino";

export type { Logger } from "pino";

export function createLogger(
  options: { level: string; node?: string; destination?: DestinationStream } = { level: "info" },
): Logger {
  return pino(
    {
      level: options.level,
      base: options.node ? { node: options.node } : {},
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    options.destination ?? pino.destination({ dest: 1, sync: true }),
  );
}

/** A logger that writes nothing (for in-process tests and one-shot commands). */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}
