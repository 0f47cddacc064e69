// Gateway checks that span several fields (TLS needs, port clashes, certificate files) and derived defaults.
import { report } from './doc-context.ts';
import type { DocContext } from './doc-context.ts';
import { resolveFile } from './resolve-file.ts';
import type { GatewaySpec, Listener } from './types.ts';

function checkTls(l: Listener, p: string, cx: DocContext): void {
  if (l.protocol === 'https' && !l.tls) report(cx, `${p}.protocol`, 'protocol "https" needs a tls block with certificates');
  if (l.protocol === 'http' && l.tls) report(cx, `${p}.tls`, 'tls is set but protocol is "http"; use "https" or "h2"');
  if (!l.tls?.certificates) return;
  let defaults = 0;
  l.tls.certificates.forEach((c, j) => {
    if (!c) return;
    const cp = `${p}.tls.certificates[${j}]`;
    if (c.certFile) c.certFile = resolveFile(cx, `${cp}.certFile`, c.certFile);
    if (c.keyFile) c.keyFile = resolveFile(cx, `${cp}.keyFile`, c.keyFile);
    if (c.hostnames) c.hostnames = c.hostnames.map((h) => h?.toLowerCase());
    if (c.hostnames?.length === 0 && ++defaults === 2) {
      report(cx, `${cp}.hostnames`, 'only one certificate per listener may have no hostnames (the default certificate)');
    }
  });
}

/** Fills listener names and reports what no single field can show. Mutates the decoded spec in place. */
export function finishGateway(spec: GatewaySpec, cx: DocContext): void {
  const byPort = new Map<number, string>();
  const names = new Set<string>();
  (spec.listeners ?? []).forEach((l, i) => {
    if (!l) return;
    const p = `spec.listeners[${i}]`;
    l.name ??= `${l.protocol}-${l.port}`;
    if (names.has(l.name)) report(cx, `${p}.name`, `duplicate listener name ${JSON.stringify(l.name)}`);
    names.add(l.name);
    // Port 0 asks the OS for a fresh port each time, so several listeners may use it.
    if (typeof l.port === 'number' && l.port !== 0) {
      const first = byPort.get(l.port);
      if (first !== undefined) report(cx, `${p}.port`, `port ${l.port} is already used by listener ${JSON.stringify(first)}`);
      else byPort.set(l.port, l.name);
    }
    checkTls(l, p, cx);
  });
  const a = spec.mesh?.assertions;
  if (a) {
    if (a.keysFile) a.keysFile = resolveFile(cx, 'spec.mesh.assertions.keysFile', a.keysFile);
    if (!spec.mesh?.identity) report(cx, 'spec.mesh.assertions', "assertions need this node's own SPIFFE ID (spec.mesh.identity): it is the act of what it mints and the audience of what it accepts");
  }
  const admin = spec.admin;
  const clash = admin?.enabled && admin.port !== 0 ? spec.listeners?.findIndex((l) => l?.port === admin.port) : -1;
  if (clash !== undefined && clash >= 0) {
    report(cx, `spec.listeners[${clash}].port`, `port ${admin.port} is also the admin port (spec.admin.port); change one of them`);
  }
}
