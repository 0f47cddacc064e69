// Test helper: an HS256 JWT (compact JWS) over the given claims, signed with `secret`.
import { createHmac } from 'node:crypto';

export function hs256(secret: Buffer, claims: Record<string, unknown>): string {
  const b = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const data = `${b({ alg: 'HS256', typ: 'JWT' })}.${b(claims)}`;
  return `${data}.${createHmac('sha256', secret).update(data).digest('base64url')}`;
}
