// The CA's one error class: a string code callers branch on (the control plane maps them to HTTP answers) and a message for people.

export type CaErrorCode =
  | 'ca_invalid_trust_domain'
  | 'ca_invalid_root'
  | 'ca_invalid_csr'
  | 'ca_invalid_spiffe_id'
  | 'ca_invalid_lifetime'
  | 'ca_intermediate_expired'
  | 'ca_intermediate_revoked'
  | 'ca_rotation_in_progress'
  | 'ca_not_rotating'
  | 'ca_state_invalid'
  | 'ca_state_key'
  | 'svid_invalid';

export class CaError extends Error {
  readonly code: CaErrorCode;
  constructor(code: CaErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CaError';
    this.code = code;
  }
}
