// validate-jwt: checks the request's JWT; verified claims become context.User for later policies.
import type { PolicyFactory } from '../proxy/policy-pipeline.ts';
import { PolicyError, errorResponse, type PolicyContext } from '../proxy/policy-context.ts';
import { createJwtValidator, type IssuerSigningKey, type JwtResult, type JwtValidator, type JwtValidatorSettings, type RequiredClaim } from '../proxy/jwt-validator.ts';

/** Validators shared across config versions by settings, so a reload keeps key sets and verified tokens. */
type ValidatorCache = Map<string, JwtValidator>;

function settingsOf(a: Record<string, unknown>): JwtValidatorSettings {
  const keys = (a.issuerSigningKeys as Array<Record<string, string>>).map((k): IssuerSigningKey => {
    const kind = k.hmac !== undefined ? 'hmac' : k.jwk !== undefined ? 'jwk' : 'pem';
    return { kind, value: k[kind], ...(k.kid !== undefined ? { kid: k.kid } : {}) };
  });
  return {
    headerName: a.headerName as string | undefined,
    queryParameterName: a.queryParameterName as string | undefined,
    cookieName: a.cookieName as string | undefined,
    requireScheme: a.requireScheme as string | undefined,
    failedValidationHttpCode: a.failedValidationHttpcode as number,
    failedValidationErrorMessage: a.failedValidationErrorMessage as string | undefined,
    requireExpirationTime: a.requireExpirationTime as boolean,
    requireSignedTokens: a.requireSignedTokens as boolean,
    clockSkew: a.clockSkew as number,
    maxTokenAge: a.maxTokenAge as number | undefined,
    openidConfig: a.openidConfig as string[],
    issuerSigningKeys: keys,
    audiences: a.audiences as string[],
    issuers: a.issuers as string[],
    requiredClaims: a.requiredClaims as RequiredClaim[],
    allowedAlgorithms: a.allowedAlgorithms as string[] | undefined,
    outputTokenVariableName: a.outputTokenVariableName as string | undefined,
    tokenType: a.tokenType as string | undefined,
  };
}

function fail(r: Extract<JwtResult, { ok: false }>): never {
  throw new PolicyError('validate-jwt', r.reason, r.detail || r.message, errorResponse(r.status, r.message));
}

export const validateJwtPolicy: PolicyFactory = (attrs, env) => {
  const settings = settingsOf(attrs);
  const key = JSON.stringify(settings);
  const cache = env.services.jwtValidators as ValidatorCache | undefined;
  let v = cache?.get(key);
  if (v === undefined) {
    v = createJwtValidator(settings);
    cache?.set(key, v);
  }
  const validator = v;
  const outVar = settings.outputTokenVariableName;
  const accept = (pc: PolicyContext, r: JwtResult): void => {
    if (!r.ok) fail(r);
    pc.claims = r.claims as Record<string, unknown>;
    if (outVar !== undefined) pc.variables.set(outVar, r.claims);
  };
  return {
    name: 'validate-jwt',
    path: env.entry.path,
    run(pc) {
      const t = validator.extractToken(pc.req.headers, pc.req.query);
      if (t === null) fail(validator.tokenNotPresent);
      if (typeof t !== 'string') fail(t.error);
      const r = validator.validate(t);
      if (r instanceof Promise) return r.then((res) => accept(pc, res));
      accept(pc, r);
    },
  };
};
