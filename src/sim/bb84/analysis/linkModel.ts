/**
 * The link model of the finite-key literature (Lim, Curty, Walenta, Xu, Zbinden, PRA 89, 022307 (2014),
 * sec. IV; standards.md section 4): a weak coherent source of intensity k (mean photon number), a fibre and
 * Bob's two threshold detectors. Pure arithmetic, shared by the simulator (which draws events with these
 * probabilities) and the security analyses and planning tool (which predict with them).
 *
 *   eta_sys = eta_Bob · 10^(-alpha·L/10)
 *   D_k = 1 - (1 - 2 p_dc) exp(-eta_sys k)              a click (signal or one of two dark counts)
 *   R_k = D_k (1 + p_ap)                                  with afterpulses
 *   e_k = p_dc + e_mis (1 - exp(-eta_sys k)) + p_ap D_k / 2   probability of a click with the wrong bit
 *   E_k = e_k / R_k                                       QBER of intensity k
 *   Y_n = 1 - (1 - 2 p_dc)(1 - eta_sys)^n                 yield of an n-photon pulse
 *
 * The paper prints eta_ch in the misalignment term; with its own e_mis that gives a QBER of 4-5 % at every
 * distance, so it is read here as eta_sys (standards.md section 4).
 */

export interface LinkParams {
  /** Fibre length L in km. */
  lengthKm: number;
  /** Fibre loss alpha in dB/km (about 0.2 at 1550 nm). */
  attenuationDbPerKm: number;
  /** Bob's detection efficiency eta_Bob (detectors and his optics), in (0, 1]. */
  detectorEfficiency: number;
  /** Dark-count probability p_dc per detector and detection window. */
  darkCountProbability: number;
  /** Afterpulse probability p_ap (0 when the detectors have none). */
  afterpulseProbability: number;
  /** Misalignment error e_mis: probability that a photon detected in its own basis gives the wrong bit. */
  misalignmentError: number;
}

export function validateLinkParams(p: LinkParams): void {
  const atLeastZero = (v: number, name: keyof LinkParams): void => {
    if (!(Number.isFinite(v) && v >= 0)) throw new RangeError(`link.${name} must be a finite number >= 0, got ${v}`);
  };
  const probability = (v: number, name: keyof LinkParams, max = 1): void => {
    if (!(v >= 0 && v <= max)) throw new RangeError(`link.${name} must be in [0, ${max}], got ${v}`);
  };
  atLeastZero(p.lengthKm, 'lengthKm');
  atLeastZero(p.attenuationDbPerKm, 'attenuationDbPerKm');
  if (!(p.detectorEfficiency > 0 && p.detectorEfficiency <= 1)) throw new RangeError(`link.detectorEfficiency must be in (0, 1], got ${p.detectorEfficiency}`);
  probability(p.darkCountProbability, 'darkCountProbability', 0.5);
  probability(p.afterpulseProbability, 'afterpulseProbability');
  probability(p.misalignmentError, 'misalignmentError', 0.5);
}

/** Transmittance of fibre and Bob's detection together, eta_sys. */
export function systemTransmittance(p: LinkParams): number {
  return p.detectorEfficiency * 10 ** ((-p.attenuationDbPerKm * p.lengthKm) / 10);
}

/** Probabilities of one pulse of intensity k at Bob's detectors. */
export interface PulseStatistics {
  /** D_k: at least one detector clicks (before afterpulses). */
  detection: number;
  /** R_k = D_k (1 + p_ap): clicks including afterpulses (the rate Bob records). */
  click: number;
  /** e_k: a click whose bit differs from Alice's (in the matching basis). */
  error: number;
  /** E_k = e_k / R_k (0 when nothing clicks). */
  qber: number;
}

export function pulseStatistics(p: LinkParams, intensity: number): PulseStatistics {
  if (!(Number.isFinite(intensity) && intensity >= 0)) throw new RangeError(`intensity must be a finite number >= 0, got ${intensity}`);
  const eta = systemTransmittance(p);
  const signal = -Math.expm1(-eta * intensity); // 1 - exp(-eta k), without cancellation for small eta k
  const detection = 1 - (1 - 2 * p.darkCountProbability) * (1 - signal);
  const click = Math.min(1, detection * (1 + p.afterpulseProbability));
  const error = p.darkCountProbability + p.misalignmentError * signal + (p.afterpulseProbability * detection) / 2;
  return { detection, click, error, qber: click === 0 ? 0 : Math.min(0.5, error / click) };
}

/** Y_n: probability that an n-photon pulse makes a detector click. */
export function photonYield(p: LinkParams, n: number): number {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`photon number must be an integer >= 0, got ${n}`);
  const eta = systemTransmittance(p);
  return 1 - (1 - 2 * p.darkCountProbability) * (1 - eta) ** n;
}

/** Poisson probability that a pulse of intensity k holds n photons: e^-k k^n / n!. */
export function poissonProbability(intensity: number, n: number): number {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`photon number must be an integer >= 0, got ${n}`);
  let term = Math.exp(-intensity);
  for (let i = 1; i <= n; i++) term *= intensity / i;
  return term;
}

/** Probability that a pulse of intensity k holds two or more photons: 1 - (1 + k) e^-k. */
export function multiPhotonProbability(intensity: number): number {
  // -expm1(-k) - k e^-k keeps precision for small k.
  return -Math.expm1(-intensity) - intensity * Math.exp(-intensity);
}
