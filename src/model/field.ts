// The field-descriptor vocabulary: one table per kind drives decoding, defaults, unknown-field checks and the JSON Schema.

/** Returns a message when a (type-correct) value is not acceptable. */
export type Check = (value: string) => string | undefined;

interface Base {
  description: string;
  /** Filled in when the field is absent. Durations and sizes are stored in ms / bytes. */
  default?: unknown;
  /** Absence is a problem. */
  required?: boolean;
  /** Absent stays undefined (no default object is built). */
  optional?: boolean;
  /** Words for the docs and schema when the default is computed (e.g. from a sibling). */
  defaultText?: string;
}

export interface StrField extends Base {
  t: 'str';
  check?: Check;
  /** JSON-Schema hints only; `check` does the real work. */
  format?: string;
  pattern?: string;
}
export interface IntField extends Base { t: 'int'; min?: number; max?: number }
export interface NumField extends Base { t: 'num'; min?: number; max?: number }
export interface BoolField extends Base { t: 'bool' }
export interface DurationField extends Base { t: 'duration'; min?: number }
export interface SizeField extends Base { t: 'size'; min?: number }
export interface EnumField extends Base { t: 'enum'; values: readonly string[] }
/** `200`, `"200-399"` or `"5xx"` → `{ min, max }`. */
export interface StatusRangeField extends Base { t: 'statusRange' }
export interface ListField extends Base { t: 'list'; items: Field; minItems?: number }
export interface DictField extends Base { t: 'dict'; values: Field; keyCheck?: Check }
/** Any YAML value, kept as plain data (a JSON body template, a free-form response body). */
export interface AnyField extends Base { t: 'any' }
/**
 * A named field defined elsewhere: lets a structure contain itself (a policy list inside `choose`).
 * The JSON Schema emits it once under `$defs`.
 */
export interface RefField extends Base { t: 'ref'; name: string; resolve: () => Field }
/** One of several shapes, chosen by the YAML node's own: a scalar, a list or a mapping (JSON Schema `anyOf`). */
export interface AltField extends Base { t: 'alt'; scalar?: Field; list?: Field; map?: Field }
export interface ObjField extends Base {
  t: 'obj';
  fields: Record<string, Field>;
  /**
   * Further fields whose names match a pattern (`claim/<path>`): `check` accepts or explains a name, `pattern`
   * is the same rule for the JSON Schema (`patternProperties`).
   */
  patternFields?: { pattern: string; check: Check; field: Field };
  /** Exactly one of these fields must be present. */
  oneOf?: readonly string[];
  /** Values that replace the fields' defaults when the whole object is absent (e.g. healthCheck.enabled). */
  whenAbsent?: Record<string, unknown>;
}

export type Field =
  | StrField
  | IntField
  | NumField
  | BoolField
  | DurationField
  | SizeField
  | EnumField
  | StatusRangeField
  | ListField
  | DictField
  | AnyField
  | RefField
  | AltField
  | ObjField;

type Opts<F> = Partial<Omit<F, 't' | 'description'>>;

export const str = (description: string, o: Opts<StrField> = {}): StrField => ({ t: 'str', description, ...o });
export const int = (description: string, o: Opts<IntField> = {}): IntField => ({ t: 'int', description, ...o });
export const num = (description: string, o: Opts<NumField> = {}): NumField => ({ t: 'num', description, ...o });
/** Without a default the field stays undefined when absent. */
export const bool = (description: string, dflt?: boolean): BoolField => ({ t: 'bool', description, default: dflt });
export const duration = (description: string, o: Opts<DurationField> = {}): DurationField => ({
  t: 'duration',
  description,
  ...o,
});
export const size = (description: string, o: Opts<SizeField> = {}): SizeField => ({ t: 'size', description, ...o });
export const oneOf = (values: readonly string[], description: string, o: Opts<EnumField> = {}): EnumField => ({
  t: 'enum',
  values,
  description,
  ...o,
});
export const statusRange = (description: string): StatusRangeField => ({ t: 'statusRange', description, required: true });
export const list = (items: Field, description: string, o: Opts<ListField> = {}): ListField => ({
  t: 'list',
  items,
  description,
  ...o,
});
export const dict = (values: Field, description: string, o: Opts<DictField> = {}): DictField => ({
  t: 'dict',
  values,
  description,
  ...o,
});
export const obj = (fields: Record<string, Field>, description: string, o: Opts<ObjField> = {}): ObjField => ({
  t: 'obj',
  fields,
  description,
  ...o,
});

export const alt = (description: string, shapes: { scalar?: Field; list?: Field; map?: Field }, o: Opts<AltField> = {}): AltField => ({
  t: 'alt',
  description,
  ...shapes,
  ...o,
});
export const any = (description: string, o: Opts<AnyField> = {}): AnyField => ({ t: 'any', description, ...o });
export const ref = (name: string, description: string, resolve: () => Field, o: Opts<RefField> = {}): RefField => ({
  t: 'ref',
  name,
  resolve,
  description,
  ...o,
});

/** The value an absent field takes: its default, or for a non-optional object the object of its fields' defaults. */
export function defaultOf(field: Field): unknown {
  if (field.default !== undefined) return structuredClone(field.default);
  if (field.t !== 'obj' || field.optional || field.required) return undefined;
  const out: Record<string, unknown> = {};
  for (const [name, f] of Object.entries(field.fields)) {
    const v = field.whenAbsent && name in field.whenAbsent ? structuredClone(field.whenAbsent[name]) : defaultOf(f);
    if (v !== undefined) out[name] = v;
  }
  return out;
}
