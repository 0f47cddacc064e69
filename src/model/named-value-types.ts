// The NamedValue kind as plain data (API Management's named values).
export interface NamedValueSpec {
  /** Exactly one of value, secret, env. */
  value?: string;
  /** A control-plane secret's name; resolved by the control plane into the node's snapshot. */
  secret?: string;
  version?: number;
  /** An environment variable of the node. */
  env?: string;
  description?: string;
}

/** Values a node can resolve NamedValues with. Without it, loading only checks that references name NamedValues. */
export interface NamedValueInputs {
  /** The node's environment (spec.env). */
  env: Record<string, string | undefined>;
  /** Secret values from the control plane (snapshot.secrets): keyed `name` (newest enabled) or `name@version`. */
  secrets?: Record<string, string>;
}

/** The key of a secret NamedValue in NamedValueInputs.secrets. */
export function secretRefKey(secret: string, version: number | undefined): string {
  return version === undefined ? secret : `${secret}@${version}`;
}
