/** How close a reconciliation came to the Shannon limit. */

/** Binary entropy h(e) in bits. */
function binaryEntropy(e: number): number {
  if (e <= 0 || e >= 1) return 0;
  return -e * Math.log2(e) - (1 - e) * Math.log2(1 - e);
}

/** Reconciliation efficiency f = leak / (n h(q)); 1 is the Shannon limit. Infinity when h(q) = 0 and something leaked. */
export function efficiency(leakedBits: number, n: number, qber: number): number {
  const ideal = n * binaryEntropy(qber);
  if (ideal === 0) return leakedBits === 0 ? 1 : Infinity;
  return leakedBits / ideal;
}
