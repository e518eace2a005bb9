// The windowed-rule evaluator runs on one node at a time: the node holding this lease (in the
// control store, with a fencing token). The holder renews it on every pass; when it dies, another
// node takes it once it has run out, so within 2× the lease of the death.
export const EVALUATOR_LEASE = 'alert-evaluator';

/** Three evaluation intervals and a second: a pass or two may run late without losing the lease. */
export function evaluatorLeaseMs(evalIntervalMs: number): number {
  return evalIntervalMs * 3 + 1000;
}
