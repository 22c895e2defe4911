// The process bookkeeping the log benchmarks share (bench/log.ts, bench/rereplication.ts): every
// process tracked by PID and stopped whatever happens (Ctrl-C included), cluster stoppers run in
// reverse order first, anomalies noted and printed as they happen, and one CPU meter.
import { ProcessRegistry, stopOnExitAndSignals } from "../metadata/procs.ts";
import { CpuMeter } from "../metadata/procstat.ts";

export function logBenchSession() {
  const registry = new ProcessRegistry();
  const stoppers: Array<() => Promise<void>> = [];
  const stopEverything = async (): Promise<void> => {
    for (const s of stoppers.splice(0).reverse()) await s().catch(() => undefined);
    await registry.stopAll(10_000);
  };
  stopOnExitAndSignals(registry, stopEverything);
  const anomalies: string[] = [];
  const anomaly = (text: string): void => {
    anomalies.push(text);
    console.error(`ANOMALY: ${text}`);
  };
  const cpuMeter = new CpuMeter(process.pid, (pid) => registry.groupOf(pid));
  return { registry, stoppers, stopEverything, anomalies, anomaly, cpuMeter };
}
