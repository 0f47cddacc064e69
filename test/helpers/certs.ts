// Test helper: a throw-away PKI (CA + ECDSA P-256 leaf certificates) made with the openssl CLI in a temp dir.
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface CertPair {
  certFile: string;
  keyFile: string;
}

export interface LeafOptions {
  /** Subject CN. */
  cn: string;
  /** DNS subjectAltNames (wildcards allowed). */
  dns: string[];
  /** Subject O, to tell two certificates for one name apart. */
  org?: string;
  /** Decimal serial number; openssl picks a random one when unset. */
  serial?: number;
}

export interface TestPki {
  dir: string;
  ca: CertPair;
  /** The CA certificate PEM, for clients' `ca` option. */
  caPem: string;
  /** Leaf for a.example.test. */
  a: CertPair;
  /** Leaf for *.b.example.test. */
  wildcardB: CertPair;
  /** Leaf without hostnames in the gateway config: the default certificate. */
  fallback: CertPair;
  /** Issues another leaf signed by the CA; `file` is the base name (`.crt`/`.key` are added). */
  issue(file: string, opts: LeafOptions): Promise<CertPair>;
  /** Removes the temp dir. */
  close(): void;
}

// No system openssl.cnf: it would add CA:TRUE extensions to every `req -x509` certificate.
const CNF = '[req]\ndistinguished_name = dn\n[dn]\n';

/**
 * Why TLS tests cannot run here, or undefined when they can. With LOCKGATE_REQUIRE_ALL set, a missing
 * openssl is an error (CI installs every component), so this throws instead of returning a reason.
 */
export function opensslMissing(): string | undefined {
  const r = spawnSync('openssl', ['version'], { encoding: 'utf8' });
  if (!r.error && r.status === 0) return undefined;
  const reason = `openssl CLI not found (${r.error?.message ?? `exit ${r.status}`}); TLS listener tests need it to make certificates`;
  if (process.env.LOCKGATE_REQUIRE_ALL) throw new Error(`${reason}, and LOCKGATE_REQUIRE_ALL is set`);
  return reason;
}

function keyArgs(keyFile: string): string[] {
  return ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', keyFile];
}

/** Makes the CA and the three leaves in a new temp dir (a few tens of milliseconds). */
export async function createTestPki(): Promise<TestPki> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lockgate-pki-'));
  const cnf = path.join(dir, 'openssl.cnf');
  writeFileSync(cnf, CNF);
  const ca: CertPair = { certFile: path.join(dir, 'ca.crt'), keyFile: path.join(dir, 'ca.key') };
  try {
    await run('openssl', [
      'req', '-config', cnf, '-x509', ...keyArgs(ca.keyFile), '-out', ca.certFile, '-days', '2',
      '-subj', '/CN=Lockgate Test CA', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
    ]);
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const issue = async (file: string, o: LeafOptions): Promise<CertPair> => {
    const pair = { certFile: path.join(dir, `${file}.crt`), keyFile: path.join(dir, `${file}.key`) };
    const subj = `/CN=${o.cn}${o.org ? `/O=${o.org}` : ''}`;
    await run('openssl', [
      'req', '-config', cnf, '-x509', ...keyArgs(pair.keyFile), '-out', pair.certFile, '-days', '2',
      '-CA', ca.certFile, '-CAkey', ca.keyFile, '-subj', subj,
      ...(o.serial === undefined ? [] : ['-set_serial', String(o.serial)]),
      '-addext', `subjectAltName=${o.dns.map((d) => `DNS:${d}`).join(',')}`,
      '-addext', 'basicConstraints=critical,CA:FALSE', '-addext', 'extendedKeyUsage=serverAuth',
    ]);
    return pair;
  };
  try {
    const [a, wildcardB, fallback] = await Promise.all([
      issue('a', { cn: 'a.example.test', dns: ['a.example.test'] }),
      issue('wildcard-b', { cn: '*.b.example.test', dns: ['*.b.example.test'] }),
      issue('default', { cn: 'default.example.test', dns: ['default.example.test'] }),
    ]);
    return { dir, ca, caPem: readFileSync(ca.certFile, 'utf8'), a, wildcardB, fallback, issue, close: () => rmSync(dir, { recursive: true, force: true }) };
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}
