/**
 * Options shared by the asymptotic (infinitely long key) analyses: GLLP and decoy-state key rates of the form
 * R = q {-Q_mu f h(E_mu) + Q_1 [1 - h(e_1)]} (Gottesman, Lo, Luetkenhaus, Preskill 2004; Lo, Ma, Chen 2005;
 * Ma, Qi, Zhao, Lo, PRA 72, 012326 (2005), eq. 1).
 *
 * Conventions, as in Ma et al. 2005: the rate is per SIGNAL pulse (decoy pulses are a vanishing fraction in
 * the asymptotic limit), and both matching bases make key, so the sifting factor is the probability that
 * the bases match, q = p_X^2 + p_Z^2 (1/2 for unbiased BB84, Ma et al.'s q).
 */
export interface AsymptoticOptions {
  /** Signal intensity mu (mean photon number). */
  mu: number;
  /** Error-correction inefficiency f (>= 1; 1.22 in Ma et al., 1.16 in Lim et al.). */
  fEC: number;
  /** Sifting factor q in (0, 1]. */
  sifting: number;
}

export function validateAsymptoticOptions(o: AsymptoticOptions): void {
  if (!(Number.isFinite(o.mu) && o.mu > 0)) throw new RangeError(`mu must be a finite number > 0, got ${o.mu}`);
  if (!(Number.isFinite(o.fEC) && o.fEC >= 1)) throw new RangeError(`fEC must be a finite number >= 1, got ${o.fEC}`);
  if (!(o.sifting > 0 && o.sifting <= 1)) throw new RangeError(`sifting must be in (0, 1], got ${o.sifting}`);
}

/** q = p_X^2 + (1 - p_X)^2: the probability that Alice's and Bob's bases match (standards.md section 4). */
export function basisMatchProbability(pX: number): number {
  if (!(pX > 0 && pX < 1)) throw new RangeError(`pX must be in (0, 1), got ${pX}`);
  return pX * pX + (1 - pX) * (1 - pX);
}
