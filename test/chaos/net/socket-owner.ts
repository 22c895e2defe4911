// Which process opened a loopback TCP connection, from the kernel's socket table: the accepted
// socket's peer (address, port) is the connecting socket's local end; /proc/net/tcp gives that
// socket's inode, and /proc/<pid>/fd of the candidate processes tells whose it is. Linux only. This is
// how the fault proxy tells the source node of a connection apart although every node dials from
// 127.0.0.1 (the fabric client does not bind a local address).
import { readdirSync, readFileSync, readlinkSync } from "node:fs";

/** `127.0.0.1` → the hex the kernel prints for an IPv4 address in /proc/net/tcp (host byte order). */
function hexIPv4(ip: string): string | undefined {
  const parts = ip.replace(/^::ffff:/, "").split(".");
  if (parts.length !== 4) return undefined;
  const bytes = parts.map((p) => Number(p));
  if (bytes.some((b) => !Number.isInteger(b) || b < 0 || b > 255)) return undefined;
  // Little-endian host: the first octet is the lowest byte.
  return bytes
    .reverse()
    .map((b) => b.toString(16).padStart(2, "0"))
    .join("")
    .toUpperCase();
}

/** The same for an IPv4-mapped IPv6 address in /proc/net/tcp6 (four little-endian words). */
function hexMappedIPv6(ip: string): string | undefined {
  const v4 = hexIPv4(ip);
  return v4 === undefined ? undefined : `0000000000000000FFFF0000${v4}`;
}

function port4(port: number): string {
  return port.toString(16).padStart(4, "0").toUpperCase();
}

/** Inode of the socket whose local end is (localIp, localPort) and remote end (remoteIp, remotePort). */
export function socketInode(localIp: string, localPort: number, remoteIp: string, remotePort: number): string | undefined {
  const tables: Array<[string, (ip: string) => string | undefined]> = [
    ["/proc/net/tcp", hexIPv4],
    ["/proc/net/tcp6", hexMappedIPv6],
  ];
  for (const [file, hex] of tables) {
    const l = hex(localIp);
    const r = hex(remoteIp);
    if (l === undefined || r === undefined) continue;
    const local = `${l}:${port4(localPort)}`;
    const remote = `${r}:${port4(remotePort)}`;
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n")) {
      const f = line.trim().split(/\s+/);
      // sl local rem st tx:rx tr:when retrnsmt uid timeout inode
      if (f[1] === local && f[2] === remote && f[9] !== undefined && f[9] !== "0") return f[9];
    }
  }
  return undefined;
}

/** The first of `pids` holding socket `inode` open. */
export function pidOwningInode(inode: string, pids: Iterable<number>): number | undefined {
  const target = `socket:[${inode}]`;
  for (const pid of pids) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue; // gone, or not ours to read
    }
    for (const fd of fds) {
      try {
        if (readlinkSync(`/proc/${pid}/fd/${fd}`) === target) return pid;
      } catch {
        // closed meanwhile
      }
    }
  }
  return undefined;
}

/** Direct children of `parent` (processes this harness spawned). */
export function childPids(parent: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^[0-9]+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      // pid (comm) state ppid …; comm may contain spaces and parentheses: split after the last ')'.
      const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(rest[1]) === parent) out.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

/** The value of `--node-name` on a process's command line. */
export function nodeNameOfPid(pid: number): string | undefined {
  try {
    const args = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
    const i = args.indexOf("--node-name");
    return i >= 0 ? args[i + 1] : undefined;
  } catch {
    return undefined;
  }
}

/** Whether a process is in state T (stopped by SIGSTOP). */
export function isStopped(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).startsWith("T");
  } catch {
    return false;
  }
}
