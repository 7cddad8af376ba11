/**
 * Binary entropy, the one information measure every analysis here uses (standards.md section 4):
 *   h(x) = -x log2 x - (1 - x) log2 (1 - x),  h(0) = h(1) = 0.
 * Arguments outside [0, 1] (including NaN) are a programming error, not a value to clamp.
 */
export function binaryEntropy(x: number): number {
  if (!(x >= 0 && x <= 1)) throw new RangeError(`binary entropy: argument must be in [0, 1], got ${x}`);
  if (x === 0 || x === 1) return 0;
  return -x * Math.log2(x) - (1 - x) * Math.log2(1 - x);
}

/**
 * h(x) for an error rate that may be at or above 1/2: the analyses treat e >= 1/2 as "no information left"
 * (h = 1), the value the privacy-amplification term needs there.
 */
export function errorEntropy(e: number): number {
  if (!(e >= 0)) throw new RangeError(`error rate must be >= 0, got ${e}`);
  return e >= 0.5 ? 1 : binaryEntropy(e);
}
