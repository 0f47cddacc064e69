import { test } from 'node:test';
import assert from 'node:assert/strict';
import { XmlError, encodeXmlName, escapeAttr, escapeText, parseXml, type XmlElement } from './xml.ts';

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof XmlError, `expected an XmlError, got ${String(err)}`);
    return err.code;
  }
  assert.fail('expected the parser to refuse the input');
}

test('parses elements, attributes, text, CDATA, comments, PIs and the declaration', () => {
  const doc = parseXml(`<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<!-- before --><?app data here?>
<a:root xmlns:a="urn:a" id='1' note="x &amp; y&#10;z">
  hello <b>one</b><b/><![CDATA[<raw> & ]]>tail &lt;&#x41;&gt;<!--c--><?p q?>
</a:root>
<!-- after -->`);
  assert.deepEqual(doc.declaration, { version: '1.0', encoding: 'UTF-8', standalone: 'yes' });
  assert.deepEqual(doc.prolog.map((n) => n.type), ['comment', 'pi']);
  assert.deepEqual(doc.epilog, [{ type: 'comment', value: ' after ' }]);
  const r = doc.root;
  assert.equal(r.name, 'a:root');
  assert.deepEqual(r.attrs, [['xmlns:a', 'urn:a'], ['id', '1'], ['note', 'x & y\nz']]);
  const kinds = r.children.map((c) => (c.type === 'text' ? `${c.cdata ? 'cdata' : 'text'}:${c.value}` : c.type === 'element' ? `<${c.name}>` : c.type));
  assert.deepEqual(kinds, ['text:\n  hello ', '<b>', '<b>', 'cdata:<raw> & ', 'text:tail <A>', 'comment', 'pi', 'text:\n']);
  assert.deepEqual((r.children[1] as XmlElement).children, [{ type: 'text', value: 'one', cdata: false }]);
  assert.deepEqual((r.children[2] as XmlElement).children, []);
});

test('attribute values are normalised and CRLF becomes LF', () => {
  const doc = parseXml('<a x="1\t2\r\n3">l1\r\nl2\rl3</a>');
  assert.deepEqual(doc.root.attrs, [['x', '1 2 3']]);
  assert.deepEqual(doc.root.children, [{ type: 'text', value: 'l1\nl2\nl3', cdata: false }]);
});

test('bytes: UTF-8 with and without BOM; invalid UTF-8, UTF-16 and other declared encodings are refused', () => {
  assert.equal(parseXml(Buffer.from('\ufeff<a>é</a>', 'utf8')).root.children[0].type, 'text');
  assert.equal(code(() => parseXml(Buffer.from([0x3c, 0x61, 0x3e, 0xff, 0x3c, 0x2f, 0x61, 0x3e]))), 'encoding');
  assert.equal(code(() => parseXml(Buffer.from('\ufeff<a/>', 'utf16le'))), 'encoding');
  assert.equal(code(() => parseXml('<?xml version="1.0" encoding="ISO-8859-1"?><a/>')), 'encoding');
});

test('DOCTYPE (and so every entity definition, internal or external) is refused', () => {
  assert.equal(code(() => parseXml('<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x "boom">]><a>&x;</a>')), 'doctype');
  assert.equal(code(() => parseXml('<!DOCTYPE a SYSTEM "file:///etc/passwd"><a/>')), 'doctype');
  assert.equal(code(() => parseXml('<!-- c --><!DOCTYPE a><a/>')), 'doctype');
  // Without a DTD an entity other than the five predefined ones is undefined.
  assert.equal(code(() => parseXml('<a>&ext;</a>')), 'syntax');
});

test('depth, node count and attribute count are bounded; deep input does not overflow the stack', () => {
  const deep = (n: number) => '<a>'.repeat(n) + '</a>'.repeat(n);
  assert.equal(parseXml(deep(64)).root.name, 'a');
  assert.equal(code(() => parseXml(deep(65))), 'depth');
  assert.equal(code(() => parseXml(`<r>${'<a>'.repeat(63)}<b/>${'</a>'.repeat(63)}</r>`)), 'depth');
  assert.equal(code(() => parseXml(deep(200_000))), 'depth');
  assert.equal(code(() => parseXml(`<r>${'<x/>'.repeat(50)}</r>`, { maxDepth: 8, maxNodes: 40, maxAttributes: 4 })), 'limit');
  assert.equal(code(() => parseXml('<r a="1" b="2" c="3"/>', { maxDepth: 8, maxNodes: 40, maxAttributes: 2 })), 'limit');
});

test('malformed documents are refused', () => {
  const bad = [
    '',
    '   ',
    'text',
    '<a>',
    '<a></b>',
    '<a><b></a></b>',
    '<a/><b/>',
    '<a/>junk',
    '<a x="1" x="2"/>',
    '<a x=1/>',
    '<a x="<"/>',
    '<a x="1"y="2"/>',
    '<a>]]></a>',
    '<a>&amp</a>',
    '<a>&#0;</a>',
    '<a>&#xD800;</a>',
    '<a>\u0001</a>',
    '<a><!-- x -- y --></a>',
    '<a><![CDATA[x</a>',
    ' <?xml version="1.0"?><a/>',
    '<a><?xml version="1.0"?></a>',
    '<?xml encoding="UTF-8"?><a/>',
    '<?xml version="2.0"?><a/>',
    '<1a/>',
    'x<a/>',
  ];
  for (const input of bad) assert.throws(() => parseXml(input), XmlError, JSON.stringify(input));
});

test('escaping and name encoding', () => {
  assert.equal(escapeText('a<b>&c\r'), 'a&lt;b&gt;&amp;c&#13;');
  assert.equal(escapeAttr('"x"\n\t<&'), '&quot;x&quot;&#10;&#9;&lt;&amp;');
  assert.equal(encodeXmlName('plain'), 'plain');
  assert.equal(encodeXmlName('first name'), 'first_x0020_name');
  assert.equal(encodeXmlName('1st'), '_x0031_st');
  assert.equal(encodeXmlName('a:b'), 'a_x003A_b');
  assert.equal(encodeXmlName('a:b', true), 'a:b');
  assert.equal(encodeXmlName('a:b:c', true), 'a:b_x003A_c');
  assert.equal(encodeXmlName('_x0041_'), '_x005F_x0041_');
  assert.equal(encodeXmlName(''), '_');
  assert.equal(encodeXmlName('😀'), '😀');
  assert.equal(encodeXmlName('\u{F0000}'), '_x000F0000_');
  for (const n of ['first name', '1st', 'a:b', '😀', '\u{F0000}', '_x0041_']) parseXml(`<${encodeXmlName(n)}/>`);
});
