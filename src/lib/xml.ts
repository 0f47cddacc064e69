// A strict, small XML 1.0 parser (well-formedness only) and the escaping helpers for writing XML.
//
// Made for untrusted bodies: no DTD is ever read (a DOCTYPE is refused outright, so there are no entity
// definitions, no external entities and no entity expansion), only the five predefined entities and character
// references are known, and depth, node count and attributes per element are bounded. The parser is iterative
// (an explicit stack), so a deep document cannot exhaust the call stack before the depth limit refuses it.
// Namespaces are not resolved: prefixed names are kept as written (`soap:Envelope`).

export interface XmlElement {
  type: 'element';
  name: string;
  /** In document order; names are unique. */
  attrs: Array<[string, string]>;
  children: XmlNode[];
}
export interface XmlText {
  type: 'text';
  value: string;
  cdata: boolean;
}
export interface XmlComment {
  type: 'comment';
  value: string;
}
export interface XmlPi {
  type: 'pi';
  target: string;
  data: string;
}
export type XmlNode = XmlElement | XmlText | XmlComment | XmlPi;

export interface XmlDeclaration {
  version: string;
  encoding?: string;
  standalone?: string;
}

export interface XmlDocument {
  declaration: XmlDeclaration | null;
  /** Comments and processing instructions before the root element. */
  prolog: Array<XmlComment | XmlPi>;
  root: XmlElement;
  /** Comments and processing instructions after it. */
  epilog: Array<XmlComment | XmlPi>;
}

export interface XmlLimits {
  /** Most nested elements (the root is depth 1). */
  maxDepth: number;
  /** Most nodes (elements, text runs, comments, PIs) in the document. */
  maxNodes: number;
  /** Most attributes on one element. */
  maxAttributes: number;
}

export const DEFAULT_XML_LIMITS: XmlLimits = Object.freeze({ maxDepth: 64, maxNodes: 200_000, maxAttributes: 256 });

export type XmlErrorCode = 'syntax' | 'doctype' | 'depth' | 'limit' | 'encoding';

export class XmlError extends Error {
  readonly code: XmlErrorCode;
  /** Offset in the decoded text (characters). */
  readonly offset: number;
  constructor(code: XmlErrorCode, message: string, offset: number) {
    super(offset >= 0 ? `${message} (at character ${offset})` : message);
    this.code = code;
    this.offset = offset;
  }
}

// XML 1.0 (5th edition) Name productions.
const START = ':A-Z_a-z\\u00C0-\\u00D6\\u00D8-\\u00F6\\u00F8-\\u02FF\\u0370-\\u037D\\u037F-\\u1FFF\\u200C-\\u200D\\u2070-\\u218F\\u2C00-\\u2FEF\\u3001-\\uD7FF\\uF900-\\uFDCF\\uFDF0-\\uFFFD\\u{10000}-\\u{EFFFF}';
const MORE = `${START}\\-.0-9\\u00B7\\u0300-\\u036F\\u203F-\\u2040`;
const NAME_AT = new RegExp(`[${START}][${MORE}]*`, 'uy');
const NAME = new RegExp(`^[${START}][${MORE}]*$`, 'u');
const NAME_START_CHAR = new RegExp(`^[${START}]$`, 'u');
const NAME_CHAR = new RegExp(`^[${MORE}]$`, 'u');
/** Characters XML 1.0 cannot carry at all (not even as a character reference). */
const NOT_CHAR = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u;

export function isXmlName(s: string): boolean {
  return NAME.test(s);
}

export function isXmlChar(cp: number): boolean {
  return cp === 0x9 || cp === 0xa || cp === 0xd || (cp >= 0x20 && cp <= 0xd7ff) || (cp >= 0xe000 && cp <= 0xfffd) || (cp >= 0x10000 && cp <= 0x10ffff);
}

const PREDEFINED: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };
const UTF8_NAMES = new Set(['utf-8', 'utf8', 'us-ascii', 'ascii']);

/** Bytes → text: UTF-8 only (a BOM is dropped); invalid UTF-8 and UTF-16 are refused. */
export function decodeXmlBytes(bytes: Uint8Array): string {
  if (bytes.length >= 2 && ((bytes[0] === 0xfe && bytes[1] === 0xff) || (bytes[0] === 0xff && bytes[1] === 0xfe))) {
    throw new XmlError('encoding', 'UTF-16 XML is not supported (only UTF-8)', -1);
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new XmlError('encoding', 'the body is not valid UTF-8', -1);
  }
}

interface Frame {
  el: XmlElement;
  /** Text gathered since the last child node (joined once it ends). */
  text: string[];
}

/** Parses a whole document. Throws XmlError for anything that is not well-formed or goes past a limit. */
export function parseXml(input: string | Uint8Array, limits: XmlLimits = DEFAULT_XML_LIMITS): XmlDocument {
  let s = typeof input === 'string' ? input : decodeXmlBytes(input);
  if (s.charCodeAt(0) === 0xfeff) s = s.slice(1);
  const bad = NOT_CHAR.exec(s);
  if (bad) throw new XmlError('syntax', `character U+${bad[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')} is not allowed in XML`, bad.index);
  // End-of-line handling (XML 1.0 §2.11).
  if (s.includes('\r')) s = s.replace(/\r\n?/g, '\n');
  const n = s.length;
  let i = 0;
  let nodes = 0;
  const fail = (msg: string, at = i): never => {
    throw new XmlError('syntax', msg, at);
  };
  const count = (): void => {
    if (++nodes > limits.maxNodes) throw new XmlError('limit', `more than ${limits.maxNodes} nodes`, i);
  };
  const isSpace = (c: number): boolean => c === 0x20 || c === 0x9 || c === 0xa || c === 0xd;
  const skipSpace = (): boolean => {
    const from = i;
    while (i < n && isSpace(s.charCodeAt(i))) i++;
    return i > from;
  };
  const name = (what: string): string => {
    NAME_AT.lastIndex = i;
    const m = NAME_AT.exec(s);
    if (m === null) fail(`expected ${what}`);
    i += m![0].length;
    return m![0];
  };
  /** `&…;` at i: the replacement text (character references are checked against Char). */
  const reference = (): string => {
    const semi = s.indexOf(';', i);
    if (semi < 0 || semi - i > 12) fail('unterminated entity or character reference');
    const body = s.slice(i + 1, semi);
    let out: string | undefined;
    if (body.startsWith('#x')) {
      const cp = /^[0-9a-fA-F]+$/.test(body.slice(2)) ? parseInt(body.slice(2), 16) : NaN;
      if (!isXmlChar(cp)) fail(`&${body}; is not a valid character reference`);
      out = String.fromCodePoint(cp);
    } else if (body.startsWith('#')) {
      const cp = /^[0-9]+$/.test(body.slice(1)) ? parseInt(body.slice(1), 10) : NaN;
      if (!isXmlChar(cp)) fail(`&${body}; is not a valid character reference`);
      out = String.fromCodePoint(cp);
    } else {
      out = Object.hasOwn(PREDEFINED, body) ? PREDEFINED[body] : undefined;
      if (out === undefined) fail(`undefined entity &${body}; (only &lt; &gt; &amp; &quot; &apos; and character references exist without a DTD)`);
    }
    i = semi + 1;
    return out!;
  };
  const attrValue = (): string => {
    const q = s[i];
    if (q !== '"' && q !== "'") fail('expected a quoted attribute value');
    i++;
    let out = '';
    for (;;) {
      if (i >= n) fail('unterminated attribute value');
      const c = s[i];
      if (c === q) {
        i++;
        return out;
      }
      if (c === '<') fail('"<" is not allowed in an attribute value');
      if (c === '&') out += reference();
      else {
        // Attribute-value normalization: white space characters become spaces.
        out += c === '\n' || c === '\t' ? ' ' : c;
        i++;
      }
    }
  };
  const comment = (): XmlComment => {
    // at "<!--"
    const end = s.indexOf('--', i + 4);
    if (end < 0) fail('unterminated comment');
    if (s[end + 2] !== '>') fail('"--" is not allowed inside a comment', end);
    const value = s.slice(i + 4, end);
    i = end + 3;
    count();
    return { type: 'comment', value };
  };
  const pi = (): XmlPi => {
    // at "<?"
    i += 2;
    const target = name('a processing instruction target');
    if (target.toLowerCase() === 'xml') fail('the XML declaration is allowed only at the very start', i - target.length);
    let data = '';
    if (!(s[i] === '?' && s[i + 1] === '>')) {
      if (!skipSpace()) fail('expected white space after the processing instruction target');
      const end = s.indexOf('?>', i);
      if (end < 0) fail('unterminated processing instruction');
      data = s.slice(i, end);
      i = end;
    }
    i += 2;
    count();
    return { type: 'pi', target, data };
  };
  const declaration = (): XmlDeclaration => {
    // at "<?xml" followed by white space
    i += 5;
    const seen: Record<string, string> = {};
    const order = ['version', 'encoding', 'standalone'];
    let last = -1;
    for (;;) {
      const sp = skipSpace();
      if (s[i] === '?' && s[i + 1] === '>') {
        i += 2;
        break;
      }
      if (!sp) fail('expected white space in the XML declaration');
      const key = name('a pseudo-attribute');
      const at = order.indexOf(key);
      if (at <= last) fail(`unexpected ${JSON.stringify(key)} in the XML declaration`);
      last = at;
      skipSpace();
      if (s[i] !== '=') fail('expected "="');
      i++;
      skipSpace();
      seen[key] = attrValue();
    }
    if (seen.version === undefined) fail('the XML declaration needs a version');
    if (!/^1\.[0-9]+$/.test(seen.version)) fail(`unsupported XML version ${JSON.stringify(seen.version)}`);
    if (seen.encoding !== undefined && !UTF8_NAMES.has(seen.encoding.toLowerCase())) {
      throw new XmlError('encoding', `encoding ${JSON.stringify(seen.encoding)} is not supported (only UTF-8)`, i);
    }
    if (seen.standalone !== undefined && seen.standalone !== 'yes' && seen.standalone !== 'no') fail('standalone must be "yes" or "no"');
    const d: XmlDeclaration = { version: seen.version };
    if (seen.encoding !== undefined) d.encoding = seen.encoding;
    if (seen.standalone !== undefined) d.standalone = seen.standalone;
    return d;
  };

  let decl: XmlDeclaration | null = null;
  if (s.startsWith('<?xml') && isSpace(s.charCodeAt(5))) decl = declaration();
  const prolog: Array<XmlComment | XmlPi> = [];
  const epilog: Array<XmlComment | XmlPi> = [];
  /** Comments, PIs and white space outside the root element. */
  const misc = (into: Array<XmlComment | XmlPi>): void => {
    for (;;) {
      skipSpace();
      if (s.startsWith('<!--', i)) into.push(comment());
      else if (s.startsWith('<?', i)) into.push(pi());
      else return;
    }
  };
  misc(prolog);
  if (s.startsWith('<!DOCTYPE', i) || s.startsWith('<!doctype', i)) {
    throw new XmlError('doctype', 'DOCTYPE declarations are refused (no DTDs, no entity definitions, no external entities)', i);
  }
  if (i >= n || s[i] !== '<') fail(i >= n ? 'no root element' : 'content before the root element');

  const stack: Frame[] = [];
  let root: XmlElement | null = null;
  const flushText = (f: Frame): void => {
    if (f.text.length === 0) return;
    const value = f.text.length === 1 ? f.text[0] : f.text.join('');
    f.text.length = 0;
    count();
    f.el.children.push({ type: 'text', value, cdata: false });
  };
  /** A start tag at i ("<" then a name). */
  const startTag = (): void => {
    i++;
    const elName = name('an element name');
    const el: XmlElement = { type: 'element', name: elName, attrs: [], children: [] };
    count();
    const seen = new Set<string>();
    for (;;) {
      const sp = skipSpace();
      const c = s[i];
      if (c === '>' || (c === '/' && s[i + 1] === '>')) break;
      if (i >= n) fail('unterminated start tag');
      if (!sp) fail('expected white space between attributes');
      const key = name('an attribute name');
      if (seen.has(key)) fail(`attribute ${JSON.stringify(key)} appears twice`);
      seen.add(key);
      if (seen.size > limits.maxAttributes) throw new XmlError('limit', `more than ${limits.maxAttributes} attributes on one element`, i);
      skipSpace();
      if (s[i] !== '=') fail('expected "=" after the attribute name');
      i++;
      skipSpace();
      el.attrs.push([key, attrValue()]);
    }
    const selfClosing = s[i] === '/';
    i += selfClosing ? 2 : 1;
    if (stack.length + 1 > limits.maxDepth) throw new XmlError('depth', `elements nested deeper than ${limits.maxDepth}`, i);
    const parent = stack.at(-1);
    if (parent) {
      flushText(parent);
      parent.el.children.push(el);
    } else root = el;
    if (!selfClosing) stack.push({ el, text: [] });
  };
  startTag();
  while (stack.length > 0) {
    if (i >= n) fail(`unclosed element <${stack.at(-1)!.el.name}>`);
    const top = stack.at(-1)!;
    const c = s[i];
    if (c === '<') {
      if (s[i + 1] === '/') {
        i += 2;
        const endName = name('an element name');
        if (endName !== top.el.name) fail(`</${endName}> does not close <${top.el.name}>`);
        skipSpace();
        if (s[i] !== '>') fail('expected ">"');
        i++;
        flushText(top);
        stack.pop();
      } else if (s.startsWith('<!--', i)) {
        flushText(top);
        top.el.children.push(comment());
      } else if (s.startsWith('<![CDATA[', i)) {
        const end = s.indexOf(']]>', i + 9);
        if (end < 0) fail('unterminated CDATA section');
        flushText(top);
        count();
        top.el.children.push({ type: 'text', value: s.slice(i + 9, end), cdata: true });
        i = end + 3;
      } else if (s[i + 1] === '?') {
        flushText(top);
        top.el.children.push(pi());
      } else if (s[i + 1] === '!') {
        if (s.startsWith('<!DOCTYPE', i)) throw new XmlError('doctype', 'DOCTYPE declarations are refused', i);
        fail('unexpected "<!"');
      } else startTag();
    } else if (c === '&') {
      top.text.push(reference());
    } else {
      let j = i;
      while (j < n && s[j] !== '<' && s[j] !== '&') j++;
      const run = s.slice(i, j);
      const bad = run.indexOf(']]>');
      if (bad >= 0) fail('"]]>" is not allowed in text', i + bad);
      top.text.push(run);
      i = j;
    }
  }
  misc(epilog);
  if (i < n) {
    if (s.startsWith('<!DOCTYPE', i)) throw new XmlError('doctype', 'DOCTYPE declarations are refused', i);
    fail(s[i] === '<' ? 'only one root element is allowed' : 'content after the root element');
  }
  return { declaration: decl, prolog, root: root!, epilog };
}

// ---------- writing ----------

export function escapeText(s: string): string {
  return /[&<>\r]/.test(s) ? s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/\r/g, '&#13;') : s;
}

/** For a double-quoted attribute value; white space characters are kept as character references. */
export function escapeAttr(s: string): string {
  return /[&<>"\t\n\r]/.test(s)
    ? s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/\t/g, '&#9;').replace(/\n/g, '&#10;').replace(/\r/g, '&#13;')
    : s;
}

/** Text a document cannot carry (a control character): throws, naming the first one. */
export function assertXmlText(s: string): void {
  const m = NOT_CHAR.exec(s);
  if (m) throw new XmlError('syntax', `character U+${m[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')} cannot be written to XML`, -1);
}

/** A CDATA section; "]]>" inside is split over two sections. */
export function cdata(s: string): string {
  return `<![CDATA[${s.replace(/]]>/g, ']]]]><![CDATA[>')}]]>`;
}

/**
 * Any string → a valid XML Name, as .NET's XmlConvert.EncodeName does: a character not allowed where it stands
 * becomes `_xHHHH_` (8 digits beyond the BMP), and an `_x` that already looks like such an escape gets its `_`
 * escaped. `allowColon` keeps one inner ":" (a prefixed name).
 */
export function encodeXmlName(raw: string, allowColon = false): string {
  if (raw === '') return '_';
  if (isXmlName(raw) && !/_x[0-9A-Fa-f]{4}/.test(raw) && (allowColon ? /^[^:]+(:[^:]+)?$/.test(raw) : !raw.includes(':'))) return raw;
  const chars = [...raw];
  const colonAt = allowColon ? chars.indexOf(':') : -1;
  let out = '';
  let first = true;
  for (let k = 0; k < chars.length; k++) {
    const ch = chars[k];
    if (k === colonAt && k > 0 && k < chars.length - 1) {
      out += ':';
      first = true;
      continue;
    }
    if (ch === '_' && chars[k + 1] === 'x' && /^[0-9A-Fa-f]{4}$/.test(chars.slice(k + 2, k + 6).join(''))) out += '_x005F_';
    else if (ch !== ':' && (first ? NAME_START_CHAR.test(ch) : NAME_CHAR.test(ch))) out += ch;
    else {
      const cp = ch.codePointAt(0)!;
      out += `_x${cp.toString(16).toUpperCase().padStart(cp > 0xffff ? 8 : 4, '0')}_`;
    }
    first = false;
  }
  return out;
}
