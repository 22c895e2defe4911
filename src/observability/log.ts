// Structured logging with one logger (pino) per node, the node's name bound, children per
// component. JSON lines when standard output is not a terminal (or `log.format = "json"`);
// readable single-line text on a terminal. Tests can pass `destination` to capture or silence it.
import pino, { type DestinationStream, type Logger } from "pino";
import pretty from "pino-pretty";

export type { Logger } from "pino";

export type LogFormat = "auto" | "json" | "text";

export function createLogger(
  options: { level: string; node?: string; format?: LogFormat; destination?: DestinationStream } = { level: "info" },
): Logger {
  const format = options.format ?? "auto";
  const text = format === "text" || (format === "auto" && process.stdout.isTTY === true);
  return pino(
    {
      level: options.level,
      base: options.node ? { node: options.node } : {},
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    options.destination ??
      (text
        ? pretty({ sync: true, singleLine: true, colorize: process.stdout.isTTY === true, translateTime: "SYS:HH:MM:ss.l", ignore: "pid,hostname" })
        : pino.destination({ dest: 1, sync: true })),
  );
}

/** A logger that writes nothing (for in-process tests and one-shot commands). */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}
