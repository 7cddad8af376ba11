/**
 * Nelder-Mead simplex minimisation (Nelder, Mead, Comput. J. 7, 308 (1965); standard coefficients 1, 2,
 * 1/2, 1/2), derivative-free and deterministic: the papers reproduced here optimise their free parameters
 * (intensities, probabilities, basis bias) numerically, and so do the tests and the planner.
 */
export interface MinimiseOptions {
  /** Initial simplex step per coordinate (default 0.5). */
  step?: number;
  /** Stop when the simplex's values differ by less than this (default 1e-12, relative + absolute). */
  tolerance?: number;
  /** Evaluation budget (default 2000). */
  maxEvaluations?: number;
}

export interface MinimiseResult {
  x: number[];
  value: number;
  evaluations: number;
}

export function minimise(f: (x: number[]) => number, start: number[], options: MinimiseOptions = {}): MinimiseResult {
  const step = options.step ?? 0.5;
  const tolerance = options.tolerance ?? 1e-12;
  const maxEvaluations = options.maxEvaluations ?? 2000;
  const n = start.length;
  let evaluations = 0;
  const value = (x: number[]): number => {
    evaluations++;
    const v = f(x);
    return Number.isNaN(v) ? Number.POSITIVE_INFINITY : v;
  };
  let simplex = [start.slice()];
  for (let i = 0; i < n; i++) {
    const p = start.slice();
    p[i]! += step;
    simplex.push(p);
  }
  let values = simplex.map(value);
  const combine = (a: number[], b: number[], t: number): number[] => a.map((ai, i) => ai + t * (b[i]! - ai));
  while (evaluations < maxEvaluations) {
    const order = values.map((_, i) => i).sort((i, j) => values[i]! - values[j]!);
    simplex = order.map((i) => simplex[i]!);
    values = order.map((i) => values[i]!);
    const best = values[0]!;
    const worst = values[n]!;
    if (Math.abs(worst - best) <= tolerance * (Math.abs(best) + tolerance)) break;
    const centroid = new Array<number>(n).fill(0);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) centroid[j]! += simplex[i]![j]! / n;
    const reflected = combine(centroid, simplex[n]!, -1);
    const fr = value(reflected);
    if (fr < best) {
      const expanded = combine(centroid, simplex[n]!, -2);
      const fe = value(expanded);
      if (fe < fr) { simplex[n] = expanded; values[n] = fe; } else { simplex[n] = reflected; values[n] = fr; }
      continue;
    }
    if (fr < values[n - 1]!) { simplex[n] = reflected; values[n] = fr; continue; }
    const outside = fr < worst;
    const contracted = combine(centroid, outside ? reflected : simplex[n]!, 0.5);
    const fc = value(contracted);
    if (fc < (outside ? fr : worst)) { simplex[n] = contracted; values[n] = fc; continue; }
    for (let i = 1; i <= n; i++) { simplex[i] = combine(simplex[0]!, simplex[i]!, 0.5); values[i] = value(simplex[i]!); }
  }
  let bestIndex = 0;
  for (let i = 1; i <= n; i++) if (values[i]! < values[bestIndex]!) bestIndex = i;
  return { x: simplex[bestIndex]!, value: values[bestIndex]!, evaluations };
}
