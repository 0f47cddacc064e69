// JSON ⇄ XML as API Management's json-to-xml and xml-to-json policies convert them (Newtonsoft.Json's conventions:
// `@name` attributes, `#text`, repeated elements as arrays), with the policies' options.
import { assertXmlText, cdata, encodeXmlName, escapeAttr, escapeText, type XmlDocument, type XmlElement, type XmlNode } from './xml.ts';

export class ConversionError extends Error {}

// ---------- JSON → XML ----------

export interface JsonToXmlOptions {
  /** Date strings are normalised (`/Date(ms)/` → ISO 8601 UTC); false copies them as they are. */
  parseDate: boolean;
  /** What a ":" in a JSON property name becomes in the element name; ":" keeps it (a namespace prefix). */
  namespaceSeparator: string;
  /** Properties named this, or this + ":" + prefix, become namespace declarations (`xmlns`, `xmlns:p`). */
  namespacePrefix?: string;
  /** The properties of an object member with this name become attributes of its element. */
  attributeBlockName?: string;
  /** Most nested objects/arrays. */
  maxDepth: number;
  /** Most characters of XML produced (arrays repeat their names: a small JSON can expand a lot); unlimited when absent. */
  maxOutput?: number;
}

/** Root element when the JSON is not an object with exactly one (non-array) property. */
export const DOCUMENT_ROOT = 'Document';
/** Element of each item of a top-level array. */
export const ARRAY_ITEM = 'Item';

const MS_DATE = /^\/Date\((-?\d+)([+-]\d{4})?\)\/$/;
const ISO_UTC = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\.(\d+)Z$/;

/** parse-date: `/Date(ms)/` → ISO 8601 UTC, and UTC date-times lose trailing zeros of their fraction (round-trip form). */
export function normalizeDate(s: string): string {
  const ms = MS_DATE.exec(s);
  if (ms) {
    const d = new Date(Number(ms[1]));
    if (Number.isNaN(d.getTime())) return s;
    return trimFraction(d.toISOString());
  }
  return ISO_UTC.test(s) ? trimFraction(s) : s;
}

function trimFraction(iso: string): string {
  const m = ISO_UTC.exec(iso);
  if (!m) return iso;
  const frac = m[2].replace(/0+$/, '');
  return frac === '' ? `${m[1]}Z` : `${m[1]}.${frac}Z`;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function scalarText(v: unknown, o: JsonToXmlOptions): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'string') {
    assertXmlText(v);
    return o.parseDate ? normalizeDate(v) : v;
  }
  return String(v);
}

/** Converts a parsed JSON value to XML text (no declaration; UTF-8 is XML's default). */
export function jsonToXml(value: unknown, o: JsonToXmlOptions): string {
  const parts: string[] = [];
  const max = o.maxOutput ?? Infinity;
  let size = 0;
  const out = {
    push(t: string): void {
      size += t.length;
      if (size > max) throw new ConversionError(`the XML would be longer than ${max} characters`);
      parts.push(t);
    },
  };
  const sep = o.namespaceSeparator;
  const elName = (key: string): string => {
    const n = sep === ':' ? key : key.replaceAll(':', sep);
    return encodeXmlName(n, sep === ':');
  };
  const nsDecl = (key: string): string | null => {
    const p = o.namespacePrefix;
    if (p === undefined || p === '') return null;
    if (key === p) return 'xmlns';
    for (const s of [':', sep]) if (key.startsWith(p + s) && key.length > p.length + s.length) return `xmlns:${encodeXmlName(key.slice(p.length + s.length))}`;
    return null;
  };
  const element = (key: string, v: unknown, depth: number): void => {
    if (depth > o.maxDepth) throw new ConversionError(`JSON nested deeper than ${o.maxDepth}`);
    const name = elName(key);
    if (Array.isArray(v)) {
      for (const item of v) {
        if (Array.isArray(item)) {
          // An array in an array: one element holding the inner items.
          out.push(`<${name}>`);
          element(key, item, depth + 1);
          out.push(`</${name}>`);
        } else element(key, item, depth + 1);
      }
      return;
    }
    if (!isObject(v)) {
      const text = scalarText(v, o);
      out.push(v === null ? `<${name} />` : `<${name}>${escapeText(text)}</${name}>`);
      return;
    }
    const attrs: string[] = [];
    const body: Array<() => void> = [];
    for (const [k, x] of Object.entries(v)) {
      if (k === '?xml' || k === '#comment') continue;
      if (o.attributeBlockName !== undefined && k === o.attributeBlockName && isObject(x)) {
        for (const [ak, av] of Object.entries(x)) attrs.push(` ${elName(ak)}="${escapeAttr(scalarText(av, o))}"`);
        continue;
      }
      const ns = nsDecl(k);
      if (ns !== null) {
        attrs.push(` ${ns}="${escapeAttr(scalarText(x, o))}"`);
        continue;
      }
      if (k.startsWith('@') && k.length > 1 && !isObject(x) && !Array.isArray(x)) {
        attrs.push(` ${elName(k.slice(1))}="${escapeAttr(scalarText(x, o))}"`);
        continue;
      }
      if (k === '#text' && !isObject(x)) {
        const items = Array.isArray(x) ? x : [x];
        body.push(() => {
          for (const t of items) out.push(escapeText(scalarText(t, o)));
        });
        continue;
      }
      if (k === '#cdata-section' && !isObject(x)) {
        const items = Array.isArray(x) ? x : [x];
        body.push(() => {
          for (const t of items) out.push(cdata(scalarText(t, o)));
        });
        continue;
      }
      body.push(() => element(k, x, depth + 1));
    }
    if (body.length === 0) {
      out.push(`<${name}${attrs.join('')} />`);
      return;
    }
    out.push(`<${name}${attrs.join('')}>`);
    for (const b of body) b();
    out.push(`</${name}>`);
  };
  if (isObject(value)) {
    const keys = Object.keys(value).filter((k) => k !== '?xml' && k !== '#comment');
    if (keys.length === 1 && !Array.isArray(value[keys[0]]) && !keys[0].startsWith('@') && !keys[0].startsWith('#')) {
      element(keys[0], value[keys[0]], 1);
    } else {
      element(DOCUMENT_ROOT, value, 0);
    }
  } else if (Array.isArray(value)) {
    out.push(`<${DOCUMENT_ROOT}>`);
    element(ARRAY_ITEM, value, 1);
    out.push(`</${DOCUMENT_ROOT}>`);
  } else {
    element(DOCUMENT_ROOT, value, 0);
  }
  return parts.join('');
}

// ---------- XML → JSON ----------

export interface XmlToJsonOptions {
  /**
   * `direct`: the document as it is (the XML declaration as `?xml`, comments, processing instructions,
   * `xmlns` attributes and prefixes kept); `javascript-friendly`: elements and attributes only, by local name.
   */
  kind: 'direct' | 'javascript-friendly';
  /** Every child element becomes an array, even a single one. */
  alwaysArrayChildElements: boolean;
}

type Json = null | string | Json[] | { [k: string]: Json };

function localName(n: string): string {
  const c = n.indexOf(':');
  return c < 0 ? n : n.slice(c + 1);
}

function isNamespaceAttr(n: string): boolean {
  return n === 'xmlns' || n.startsWith('xmlns:');
}

/** Adds `value` under `key`, turning a repeated key into an array (in document order). Values are never arrays themselves. */
function add(obj: Record<string, Json>, key: string, value: Json, forceArray: boolean): void {
  if (!Object.hasOwn(obj, key)) obj[key] = forceArray ? [value] : value;
  else {
    const prev = obj[key];
    if (Array.isArray(prev)) prev.push(value);
    else obj[key] = [prev, value];
  }
}

export function xmlToJson(doc: XmlDocument, o: XmlToJsonOptions): Json {
  const direct = o.kind === 'direct';
  const name = (n: string): string => (direct ? n : localName(n));
  const element = (el: XmlElement): Json => {
    const attrs = direct ? el.attrs : el.attrs.filter(([k]) => !isNamespaceAttr(k));
    const kids = direct ? el.children : el.children.filter((c) => c.type === 'element' || c.type === 'text');
    if (attrs.length === 0 && kids.length === 0) return null;
    if (attrs.length === 0 && kids.every((c) => c.type === 'text')) {
      return kids.map((c) => (c as { value: string }).value).join('');
    }
    const obj: Record<string, Json> = Object.create(null);
    for (const [k, v] of attrs) obj[`@${name(k)}`] = v;
    const hasElements = kids.some((c) => c.type === 'element');
    for (const c of kids) nodeInto(obj, c, hasElements);
    return obj;
  };
  const nodeInto = (obj: Record<string, Json>, c: XmlNode, hasElements: boolean): void => {
    switch (c.type) {
      case 'element':
        add(obj, name(c.name), element(c), o.alwaysArrayChildElements);
        break;
      case 'text':
        // White space between elements is formatting, not content.
        if (hasElements && c.value.trim() === '') return;
        add(obj, '#text', c.value, false);
        break;
      case 'comment':
        add(obj, '#comment', c.value, false);
        break;
      case 'pi':
        add(obj, `?${c.target}`, c.data, false);
        break;
    }
  };
  const out: Record<string, Json> = Object.create(null);
  if (direct) {
    if (doc.declaration !== null) {
      const d: Record<string, Json> = Object.create(null);
      d['@version'] = doc.declaration.version;
      if (doc.declaration.encoding !== undefined) d['@encoding'] = doc.declaration.encoding;
      if (doc.declaration.standalone !== undefined) d['@standalone'] = doc.declaration.standalone;
      out['?xml'] = d;
    }
    for (const m of doc.prolog) nodeInto(out, m, true);
  }
  out[name(doc.root.name)] = element(doc.root);
  if (direct) for (const m of doc.epilog) nodeInto(out, m, true);
  return out;
}
