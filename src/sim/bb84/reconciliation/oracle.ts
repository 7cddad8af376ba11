/**
 * Cascade's classical channel as Bob sees it (one call = one round trip), and the errors a malformed question,
 * answer or parameter set raises.
 */
import { RoundProtocolError } from '../../Simulator.js';

/** Parity of Alice's bits at shuffled positions [start, end) of pass `pass` (0-based). */
export type ParityQuestion = { pass: number; start: number; end: number };

/** Bob's view of the classical channel: one call = one round trip. */
export interface ParityOracle {
  /** Resolves one bit (0/1) per question, in order. */
  askParities(questions: ParityQuestion[]): Promise<Uint8Array>;
}

export type CascadeErrorCode =
  /** Parameters or seed are malformed (both ends must agree on them). */
  | 'BAD_PARAMS'
  /** A question names a pass or range outside the key, or is not a question at all. */
  | 'BAD_QUESTION'
  /** Answering would disclose more parities than the responder's budget. */
  | 'TOO_MANY_QUESTIONS'
  /** The answer batch has the wrong length or a value other than 0/1. */
  | 'BAD_ANSWER'
  /** Alice's answers contradict each other (a bit would be corrected twice). */
  | 'INCONSISTENT_ANSWERS';

/**
 * A malformed Cascade message or parameter set. Extends the simulator's RoundProtocolError: the
 * round is abandoned and no key is stored.
 */
export class CascadeProtocolError extends RoundProtocolError {
  constructor(
    readonly code: CascadeErrorCode,
    message: string,
  ) {
    super(`cascade ${code}: ${message}`);
  }
}
