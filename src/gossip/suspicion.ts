/**
 * How long a suspected member has to refute before it is declared dead.
 *
 * A single prober's failure may be its own fault (a slow machine, a lost
 * packet), so a lone suspicion waits the longest, `maxMs`. Each distinct
 * member that independently suspects the same incarnation is evidence that
 * the fault is the suspect's, so the wait shrinks logarithmically with the
 * number of confirmations `c`, reaching `minMs` once `expected` members
 * (the most that could confirm) have done so:
 *
 *     timeout(c) = max(minMs, maxMs - (maxMs - minMs) * ln(c + 1) / ln(expected + 1))
 *
 * With `expected` < 1 nobody else can confirm (a cluster of two), so the
 * timeout is `minMs` straight away: waiting longer would buy nothing.
 */
export function suspicionTimeoutMs(
  minMs: number,
  maxMs: number,
  expected: number,
  confirmations: number,
): number {
  if (expected < 1) return minMs;
  const fraction = Math.log(confirmations + 1) / Math.log(expected + 1);
  const timeout = maxMs - (maxMs - minMs) * fraction;
  return Math.max(minMs, Math.floor(timeout));
}

/** How many other members could confirm a suspicion in a cluster of `size`. */
export function expectedConfirmations(size: number, wanted: number): number {
  // Neither the suspect nor the first suspecter can confirm.
  return Math.max(0, Math.min(wanted, size - 2));
}

/** How many times an update is piggybacked, growing with the cluster's size. */
export function retransmitLimit(multiplier: number, size: number): number {
  return multiplier * Math.ceil(Math.log10(size + 1));
}
