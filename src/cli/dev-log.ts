// How `cairn dev` shows its nodes' log lines. The nodes always log JSON lines (their log files keep
// them as they are); on a terminal each line is rendered readable (pino-pretty), in colour, behind
// the node's name in its own colour; otherwise (a pipe, a file, or --json-logs) the JSON line is
// passed on unchanged: it already names its node.
import { prettyFactory } from "pino-pretty";

const NAME_COLOURS = [36, 33, 35, 32, 34, 91, 96, 93, 95] as const;

export interface DevLogOptions {
  /** Readable lines instead of JSON. */
  pretty: boolean;
  /** ANSI colours (only with `pretty`). */
  colour: boolean;
  /** Width the node names are padded to. */
  nameWidth: number;
}

/** A function from (node index, node name, one line without its newline) to what to print. */
export function devLineFormatter(options: DevLogOptions): (index: number, name: string, line: string) => string {
  if (!options.pretty) return (_i, _name, line) => line + "\n";
  const render = prettyFactory({
    colorize: options.colour,
    singleLine: true,
    translateTime: "SYS:HH:MM:ss.l",
    ignore: "pid,hostname,node",
  });
  return (index, name, line) => {
    const padded = name.padEnd(options.nameWidth);
    const prefix = options.colour ? `\x1b[${NAME_COLOURS[index % NAME_COLOURS.length]}m${padded} |\x1b[0m ` : `${padded} | `;
    let text = line;
    if (line.startsWith("{")) {
      try {
        const parsed: unknown = JSON.parse(line);
        if (typeof parsed === "object" && parsed !== null) text = render(parsed).trimEnd();
      } catch {
        // Not a log line (a crash's output): shown as it is.
      }
    }
    return prefix + text + "\n";
  };
}
