/** Links and the statistics the detection tests judge the simulator with. */
import type { LinkParams } from '../../../../src/sim/bb84/analysis/linkModel.js';

/** Lim et al. 2014's example channel (standards.md section 4) at `lengthKm`. */
export function limLink(lengthKm: number): LinkParams {
  return { lengthKm, attenuationDbPerKm: 0.2, detectorEfficiency: 0.1, darkCountProbability: 6e-7, afterpulseProbability: 0.04, misalignmentError: 0.005 };
}

/** (observed - n p) / sqrt(n p (1 - p)): how many standard deviations a binomial count lies from its mean. */
export function binomialZ(observed: number, n: number, p: number): number {
  const sd = Math.sqrt(n * p * (1 - p));
  return (observed - n * p) / (sd === 0 ? 1 : sd);
}

/**
 * Two-sample chi-square statistic of homogeneity for category counts a and b (Press et al., Numerical Recipes, 14.3),
 * with the categories whose pooled count is below `minPooled` merged into one. Returns the statistic and its degrees
 * of freedom.
 */
export function twoSampleChiSquare(a: readonly number[], b: readonly number[], minPooled = 10): { chi2: number; df: number } {
  const A = a.reduce((x, y) => x + y, 0);
  const B = b.reduce((x, y) => x + y, 0);
  const cells: Array<[number, number]> = [];
  let restA = 0;
  let restB = 0;
  a.forEach((ai, i) => {
    const bi = b[i]!;
    if (ai + bi >= minPooled) cells.push([ai, bi]);
    else {
      restA += ai;
      restB += bi;
    }
  });
  if (restA + restB > 0) cells.push([restA, restB]);
  const ka = Math.sqrt(B / A);
  const kb = Math.sqrt(A / B);
  let chi2 = 0;
  for (const [ai, bi] of cells) chi2 += (ka * ai - kb * bi) ** 2 / (ai + bi);
  return { chi2, df: cells.length - 1 };
}

/** Upper quantile of the chi-square distribution at normal quantile z (Wilson-Hilferty; z = 3.72 is p = 1e-4). */
export function chiSquareQuantile(df: number, z: number): number {
  const c = 2 / (9 * df);
  return df * (1 - c + z * Math.sqrt(c)) ** 3;
}
