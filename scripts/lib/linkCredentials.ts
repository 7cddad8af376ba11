/**
 * Link credentials for module processes started by the demo, the benchmarks and the tests: one fresh
 * pair per call, written (0600) into `dir` as sender.json and detector.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateCredentialPair } from '../../src/exchange/auth/linkCredentials.js';

export interface CredentialFiles {
  /** For the module with module.sender 1. */
  sender: string;
  /** For the module with module.sender 0. */
  detector: string;
}

export async function writeLinkCredentials(dir: string): Promise<CredentialFiles> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const pair = await generateCredentialPair();
  const files = { sender: join(dir, 'sender.json'), detector: join(dir, 'detector.json') };
  writeFileSync(files.sender, JSON.stringify(pair.sender), { mode: 0o600 });
  writeFileSync(files.detector, JSON.stringify(pair.detector), { mode: 0o600 });
  return files;
}

/** QKDM_* variables that give a module of role `sender` its file of `files`. */
export function credentialsEnv(files: CredentialFiles, sender: 0 | 1): Record<string, string> {
  return { QKDM_PEER_AUTH_CREDENTIALS: sender === 1 ? files.sender : files.detector };
}
