/**
 * The planner's computation: each analysis asked for, at each distance (and, for the finite-key analysis,
 * each block size asked for), through the analyses' uniform registry entry.
 */
import { ANALYSES, type AnalysisName, type AnalysisRow } from '../../../src/sim/bb84/analysis/registry.js';
import type { PlanLink } from './linkFile.js';

export interface PlanRow extends AnalysisRow {
  distance_km: number;
}

export interface PlanResult {
  analysis: AnalysisName;
  title: string;
  rows: PlanRow[];
}

export interface PlanRequest {
  plan: PlanLink;
  analyses: readonly AnalysisName[];
  distances: readonly number[];
  /** Block sizes (pulses) for the finite-key analyses; default the link file's `pulses`. */
  pulses?: readonly number[];
}

export function runPlan(req: PlanRequest): PlanResult[] {
  return req.analyses.map((name) => {
    const analysis = ANALYSES[name];
    const blocks = analysis.finite ? (req.pulses ?? [req.plan.settings.pulses]) : [req.plan.settings.pulses];
    const rows: PlanRow[] = [];
    for (const pulses of blocks) {
      for (const distance of req.distances) {
        const row = analysis.evaluate({ ...req.plan.link, lengthKm: distance }, { ...req.plan.settings, pulses });
        const planRow: PlanRow = { distance_km: distance, ...row };
        if (req.plan.pulseRateHz !== undefined) planRow.secret_bits_per_s = row.rate_per_pulse * req.plan.pulseRateHz;
        rows.push(planRow);
      }
    }
    return { analysis: name, title: analysis.title, rows };
  });
}
