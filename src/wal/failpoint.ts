// Failpoints for crash tests (as etcd's gofail): MONITORING_FAILPOINT=<name>:<n> makes the process
// kill itself with SIGKILL the n-th time it passes the named point, so a test can crash it exactly
// mid-write, between a write and its fsync, or between a storage insert and its checkpoint. Unset
// (always, outside tests) it costs one comparison.
const spec = /^([a-z-]+):(\d+)$/.exec(process.env.MONITORING_FAILPOINT ?? '');
const armed = spec?.[1];
let left = spec ? Number(spec[2]) : 0;

export const failpoint = {
  /** True when this point is armed and its turn has come (for points that must act before dying). */
  enabled(point: string): boolean {
    return armed === point && left <= 1;
  },
  hit(point: string): void {
    if (armed !== point) return;
    if (--left > 0) return;
    process.kill(process.pid, 'SIGKILL');
  },
};
