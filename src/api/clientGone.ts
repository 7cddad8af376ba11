import type { Response } from 'express';

/**
 * An AbortSignal that fires when the HTTP client goes away before its answer was sent. A GET_KEY
 * waiting for a key stops waiting and claims nothing, so no key is taken for an answer nobody reads.
 * (A key taken in the instant between the last check and the disconnect is still lost at this end;
 * that window is one store call long.)
 */
export function clientGone(res: Response): AbortSignal {
  const controller = new AbortController();
  res.once('close', () => {
    if (!res.writableFinished) controller.abort();
  });
  return controller.signal;
}
