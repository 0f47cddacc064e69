// The gateway's own cookies (session id, login binding) and the header readers the authentication code shares.

export const SESSION_COOKIE = 'lockgate_session';
export const LOGIN_COOKIE = 'lockgate_login';

/** `__Host-` cookies need Secure, so plain-HTTP listeners (development) use the bare names. */
export function cookieName(base: string, secure: boolean): string {
  return secure ? `__Host-${base}` : base;
}

export function cookieAttributes(secure: boolean, maxAgeSeconds: number): string {
  return `; Path=/; HttpOnly; SameSite=Lax${secure ? '; Secure' : ''}; Max-Age=${maxAgeSeconds}`;
}

/** undefined: absent; null: sent more than once (ambiguous, refused). */
export function headerOnce(raw: readonly string[], lower: string): string | undefined | null {
  let v: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i].length === lower.length && raw[i].toLowerCase() === lower) {
      if (v !== undefined) return null;
      v = raw[i + 1];
    }
  }
  return v;
}

/** A cookie's value; undefined when absent or when it appears twice (a planted duplicate never wins). */
export function readCookie(raw: readonly string[], name: string): string | undefined {
  let found: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i].length !== 6 || raw[i].toLowerCase() !== 'cookie') continue;
    for (const part of raw[i + 1].split(';')) {
      const eq = part.indexOf('=');
      if (eq <= 0 || part.slice(0, eq).trim() !== name) continue;
      if (found !== undefined) return undefined;
      found = part.slice(eq + 1).trim();
    }
  }
  return found;
}

/** Removes the gateway's own cookies from upstream `cookie` headers (flat [name, value, …], names lower-case): backends never see session ids. */
export function stripGatewayCookies(headers: string[]): void {
  for (let i = 0; i < headers.length; i += 2) {
    if (headers[i] !== 'cookie') continue;
    const kept = headers[i + 1].split(';').filter((p) => {
      const name = p.slice(0, Math.max(0, p.indexOf('='))).trim();
      return name !== SESSION_COOKIE && name !== LOGIN_COOKIE && name !== `__Host-${SESSION_COOKIE}` && name !== `__Host-${LOGIN_COOKIE}`;
    });
    if (kept.length > 0) headers[i + 1] = kept.map((p) => p.trim()).join('; ');
    else {
      headers.splice(i, 2);
      i -= 2;
    }
  }
}
