/**
 * One uniform entry point per analysis for the planner: (link at one distance, settings) -> a row with the
 * secret key rate per pulse, the QBER and extras. Every analysis reads the same settings; the asymptotic
 * ones use the signal intensity intensities[0] (and vacuum-weak the two decoys), the finite one all of them.
 *
 * Sifting (see asymptoticOptions.ts): the asymptotic analyses count key from every pulse whose bases match,
 * q = p_X^2 + p_Z^2, per signal pulse, as Ma et al. 2005 (q = 1/2 at p_X = 1/2); lim2014 makes key only from
 * X-X detections (q_x^2 is inside its expected counts) and its rate is per pulse of any intensity, l / N.
 */
import { basisMatchProbability, type AsymptoticOptions } from './asymptoticOptions.js';
import type { ExpectedCountSettings } from './decoyCounts.js';
import { infiniteDecoyRate } from './infiniteDecoy.js';
import { lim2014Rate } from './lim2014Rate.js';
import type { LinkParams } from './linkModel.js';
import { noDecoyRate } from './noDecoy.js';
import { plobRate } from './plob.js';
import { singlePhotonOnlyRate } from './singlePhotonOnly.js';
import { vacuumWeakRate } from './vacuumWeak.js';

export interface PlanSettings extends ExpectedCountSettings {
  /** Error-correction inefficiency f_EC (>= 1). */
  fEC: number;
}

/** One planner row (without the distance): JSON-ready, snake_case like the tool's output. */
export interface AnalysisRow {
  /** Secret bits per pulse (0 when no key; Infinity only for plob on a lossless link). */
  rate_per_pulse: number;
  /** The QBER the analysis works with (null when it has none, e.g. plob). */
  qber: number | null;
  [extra: string]: number | string | null;
}

export interface Analysis {
  name: AnalysisName;
  /** Short title for tables, legends and --help. */
  title: string;
  /** What it is and where it comes from (one line). */
  summary: string;
  /** True when the result depends on the number of pulses (finite key). */
  finite: boolean;
  evaluate(link: LinkParams, settings: PlanSettings): AnalysisRow;
}

export const ANALYSIS_NAMES = ['infinite-decoy', 'vacuum-weak', 'no-decoy', 'lim2014', 'plob', 'single-photon-only'] as const;
export type AnalysisName = (typeof ANALYSIS_NAMES)[number];

function asymptotic(s: PlanSettings): AsymptoticOptions {
  return { mu: s.intensities[0]!, fEC: s.fEC, sifting: basisMatchProbability(s.pX) };
}

export const ANALYSES: Readonly<Record<AnalysisName, Analysis>> = {
  'infinite-decoy': {
    name: 'infinite-decoy',
    title: 'infinite decoy (asymptotic)',
    summary: 'decoy-state limit with the exact single-photon yield and error (Lo, Ma, Chen 2005; Ma et al. 2005 eq. 1)',
    finite: false,
    evaluate(link, s) {
      const r = infiniteDecoyRate(link, asymptotic(s));
      return { rate_per_pulse: r.rate, qber: r.qber, gain: r.gain, y1: r.y1, e1: r.e1, q1: r.q1 };
    },
  },
  'vacuum-weak': {
    name: 'vacuum-weak',
    title: 'vacuum + weak decoy (asymptotic)',
    summary: 'two decoys, Ma, Qi, Zhao, Lo PRA 72, 012326 (2005) eqs. 34, 35, 37',
    finite: false,
    evaluate(link, s) {
      const r = vacuumWeakRate(link, { ...asymptotic(s), nu: s.intensities[1]!, vacuum: s.intensities[2]! });
      return { rate_per_pulse: r.rate, qber: r.qber, gain: r.gain, y1_lower: r.y1, e1_upper: r.e1, q1_lower: r.q1 };
    },
  },
  'no-decoy': {
    name: 'no-decoy',
    title: 'no decoy (GLLP)',
    summary: 'weak pulses without decoys, every multi-photon pulse tagged (GLLP 2004)',
    finite: false,
    evaluate(link, s) {
      const r = noDecoyRate(link, asymptotic(s));
      return { rate_per_pulse: r.rate, qber: r.qber, gain: r.gain, multi_photon_fraction: r.multiPhotonFraction };
    },
  },
  lim2014: {
    name: 'lim2014',
    title: 'finite key (Lim 2014)',
    summary: 'three intensities, finite key of `pulses` pulses, Lim et al. PRA 89, 022307 (2014) eqs. 1-5',
    finite: true,
    evaluate(link, s) {
      const r = lim2014Rate(link, s, s.fEC);
      const b = r.bounds;
      return {
        rate_per_pulse: r.ratePerPulse,
        qber: r.qberX,
        pulses: s.pulses,
        key_bits: r.length,
        n_x: b?.nX ?? null,
        s_x0: b?.sX0 ?? null,
        s_x1: b?.sX1 ?? null,
        phi_x: b !== undefined && Number.isFinite(b.phiX) ? b.phiX : null,
        lambda_ec: r.lambdaEC,
        abort: r.abort ?? null,
      };
    },
  },
  plob: {
    name: 'plob',
    title: 'PLOB bound',
    summary: 'repeaterless bound -log2(1 - eta_sys) (Pirandola et al. 2017)',
    finite: false,
    evaluate(link) {
      const r = plobRate(link);
      return { rate_per_pulse: r.rate, qber: null, eta_sys: r.eta };
    },
  },
  'single-photon-only': {
    name: 'single-photon-only',
    title: 'single-photon-only (NOT secure)',
    summary: 'the old sizing, every click counted as a single photon: a test oracle, not a security claim',
    finite: false,
    evaluate(link, s) {
      const r = singlePhotonOnlyRate(link, asymptotic(s));
      return { rate_per_pulse: r.rate, qber: r.qber, gain: r.gain };
    },
  },
};

export function isAnalysisName(name: string): name is AnalysisName {
  return (ANALYSIS_NAMES as readonly string[]).includes(name);
}
