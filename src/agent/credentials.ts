// The node's identity on disk: certificate chain, private key (0600) and trust bundle files, and what the join returned.
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { NodeKind } from '../model/snapshot.ts';
import { writeFileAtomic } from './atomic-file.ts';

/** Where the data plane reads its TLS material (`certFile`/`keyFile`/`caFile` in its config). */
export interface CredentialFiles {
  dir: string;
  /** Leaf followed by the intermediate. */
  certFile: string;
  keyFile: string;
  /** The trust bundle: every root, PEM. */
  bundleFile: string;
}

/** What the node remembers between runs (`node.json`). */
export interface NodeState {
  format: 1;
  nodeId: string;
  spiffeId: string;
  kind: NodeKind;
  namespace: string;
  service: string;
  trustDomain: string;
  /** When the current certificate arrived and when it expires (epoch ms): renewal is planned from these. */
  receivedAt: number;
  notAfter: number;
}

export function credentialFiles(dir: string): CredentialFiles {
  return { dir, certFile: join(dir, 'cert.pem'), keyFile: join(dir, 'key.pem'), bundleFile: join(dir, 'bundle.pem') };
}

export function bundleText(bundle: readonly string[]): string {
  return bundle.map((p) => `${p.trim()}\n`).join('');
}

/** Splits PEM text into its CERTIFICATE blocks. */
export function pemCertificates(text: string): string[] {
  return text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)?.map((p) => `${p}\n`) ?? [];
}

/**
 * Writes new credentials. Each file is replaced atomically; the key goes first, so a reader that catches the moment
 * between the two renames sees a new key with the old certificate rather than the reverse for a shorter time — and
 * the data plane only re-reads them when told (onCertificate), after both are in place.
 */
export async function writeCredentials(files: CredentialFiles, c: { chainPem?: string; keyPem?: string; bundle?: readonly string[] }): Promise<void> {
  await mkdir(files.dir, { recursive: true, mode: 0o700 });
  if (c.keyPem !== undefined) await writeFileAtomic(files.keyFile, c.keyPem, 0o600);
  if (c.chainPem !== undefined) await writeFileAtomic(files.certFile, c.chainPem, 0o600);
  if (c.bundle !== undefined) await writeFileAtomic(files.bundleFile, bundleText(c.bundle), 0o600);
}

export async function readCredentials(files: CredentialFiles): Promise<{ chainPem: string; keyPem: string; bundle: string[] }> {
  const [chainPem, keyPem, bundle] = await Promise.all([readFile(files.certFile, 'utf8'), readFile(files.keyFile, 'utf8'), readFile(files.bundleFile, 'utf8')]);
  return { chainPem, keyPem, bundle: pemCertificates(bundle) };
}

export async function saveNodeState(path: string, state: NodeState): Promise<void> {
  await writeFileAtomic(path, `${JSON.stringify(state, null, 2)}\n`, 0o600);
}

/** The saved state, or undefined when the node has not joined (or the file is from an unknown format). */
export async function loadNodeState(path: string): Promise<NodeState | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const s = JSON.parse(text) as Partial<NodeState>;
  if (s.format !== 1 || typeof s.nodeId !== 'string' || typeof s.spiffeId !== 'string') return undefined;
  return s as NodeState;
}
