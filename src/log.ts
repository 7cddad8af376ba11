/**
 * One logger for the process. Redaction is configured here, centrally: key bytes, tokens,
 * passwords and signing keys are removed from any log object that carries them, whatever the
 * call site. Call sites also never pass key material in the first place.
 */
import { pino, type Logger, type LevelWithSilent } from 'pino';
import { PinoPretty } from 'pino-pretty';

export const REDACTED_PATHS = [
  'key',
  '*.key',
  'keys',
  '*.keys',
  'token',
  '*.token',
  'api_token',
  '*.api_token',
  'passwd',
  '*.passwd',
  'password',
  '*.password',
  'private_key',
  '*.private_key',
  'secretKey',
  '*.secretKey',
  'req.headers.authorization',
  'req.headers["x-vault-token"]',
  'req.headers.cookie',
  'req.headers["x-sae-id"]',
  'res.headers["set-cookie"]',
];

export function createLogger(level: LevelWithSilent = 'info', destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { svc: 'qkd-module' },
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
}

/** Whether logs go out as readable lines: `pretty`, or `auto` with stdout a terminal (JSON for files, pipes, collectors). */
export function prettyLogs(format: 'auto' | 'json' | 'pretty', stdoutIsTerminal = Boolean(process.stdout.isTTY)): boolean {
  return format === 'pretty' || (format === 'auto' && stdoutIsTerminal);
}

/**
 * pino-pretty in this process (no worker thread), synchronous so a start-up failure's lines are out
 * before the process exits. It formats the already serialised (so already redacted) JSON line.
 */
export function prettyDestination(output?: NodeJS.WritableStream): pino.DestinationStream {
  return PinoPretty({
    colorize: output === undefined && Boolean(process.stdout.isTTY),
    translateTime: 'SYS:HH:MM:ss.l',
    ignore: 'pid,hostname,svc',
    sync: true,
    ...(output ? { destination: output } : {}),
  });
}
