import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConversionError, jsonToXml, normalizeDate, xmlToJson, type JsonToXmlOptions } from './json-xml.ts';
import { parseXml } from './xml.ts';

const J: JsonToXmlOptions = { parseDate: true, namespaceSeparator: '_', maxDepth: 64 };

test('json → xml: one property is the root; otherwise <Document>; arrays repeat the element', () => {
  assert.equal(jsonToXml({ order: { id: 7, tags: ['a', 'b'], gift: false, note: null } }, J), '<order><id>7</id><tags>a</tags><tags>b</tags><gift>false</gift><note /></order>');
  assert.equal(jsonToXml({ a: 1, b: 'x<y' }, J), '<Document><a>1</a><b>x&lt;y</b></Document>');
  assert.equal(jsonToXml([1, { x: 2 }], J), '<Document><Item>1</Item><Item><x>2</x></Item></Document>');
  assert.equal(jsonToXml('hi', J), '<Document>hi</Document>');
  assert.equal(jsonToXml({ list: [1, 2] }, J), '<Document><list>1</list><list>2</list></Document>');
  assert.equal(jsonToXml({ a: [[1, 2], [3]] }, J), '<Document><a><a>1</a><a>2</a></a><a><a>3</a></a></Document>');
  assert.equal(jsonToXml({ e: {} }, J), '<e />');
  // Every output is well-formed XML.
  for (const v of [{ 'first name': 'x', '1st': 2, 'a:b': 3 }, { '': 1 }, [[[]]]]) parseXml(jsonToXml(v, J));
  assert.equal(jsonToXml({ r: { 'first name': 'x', '1st': 2 } }, J), '<r><first_x0020_name>x</first_x0020_name><_x0031_st>2</_x0031_st></r>');
});

test('json → xml: @attributes, #text, #cdata-section, attribute blocks and namespace declarations (API Management\'s SOAP example)', () => {
  const input = {
    'soapenv:Envelope': {
      'xmlns:soapenv': 'http://schemas.xmlsoap.org/soap/envelope/',
      'xmlns:v1': 'http://localdomain.com/core/v1',
      'soapenv:Header': {},
      'soapenv:Body': { 'v1:QueryList': { '#attrs': { queryName: 'test' }, 'v1:QueryItem': { name: 'dummy text' } } },
    },
  };
  const xml = jsonToXml(input, { ...J, parseDate: false, namespaceSeparator: ':', namespacePrefix: 'xmlns', attributeBlockName: '#attrs' });
  assert.equal(
    xml,
    '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:v1="http://localdomain.com/core/v1">' +
      '<soapenv:Header /><soapenv:Body><v1:QueryList queryName="test"><v1:QueryItem><name>dummy text</name></v1:QueryItem></v1:QueryList></soapenv:Body></soapenv:Envelope>',
  );
  parseXml(xml);
  // Default separator "_": a prefixed name becomes a plain one.
  assert.equal(jsonToXml({ 'a:b': { 'c:d': 1 } }, J), '<a_b><c_d>1</c_d></a_b>');
  assert.equal(jsonToXml({ p: { '@id': 5, '@q': 'a"b', '#text': 'body & more' } }, J), '<p id="5" q="a&quot;b">body &amp; more</p>');
  assert.equal(jsonToXml({ p: { '#cdata-section': 'x]]>y' } }, J), '<p><![CDATA[x]]]]><![CDATA[>y]]></p>');
});

test('json → xml: depth is bounded; characters XML cannot carry are refused', () => {
  let deep: unknown = 1;
  for (let i = 0; i < 100; i++) deep = { a: deep };
  assert.throws(() => jsonToXml(deep, J), ConversionError);
  assert.throws(() => jsonToXml({ a: 'bell\u0007' }, J), /cannot be written to XML/);
});

test('json → xml: the output size is bounded (repeated array names cannot blow a small JSON up)', () => {
  const name = 'n'.repeat(1000);
  const small = { [name]: Array.from({ length: 1000 }, () => 1) };
  assert.ok(JSON.stringify(small).length < 3100);
  assert.throws(() => jsonToXml(small, { ...J, maxOutput: 100_000 }), /longer than 100000 characters/);
  // Exactly at the limit passes; one character less does not.
  assert.equal(jsonToXml({ a: [1, 2] }, { ...J, maxOutput: 37 }), '<Document><a>1</a><a>2</a></Document>');
  assert.throws(() => jsonToXml({ a: [1, 2] }, { ...J, maxOutput: 36 }), ConversionError);
});

test('parse-date normalises /Date(ms)/ and trailing zeros of UTC fractions only', () => {
  assert.equal(normalizeDate('/Date(1332308412340)/'), '2012-03-21T05:40:12.34Z');
  assert.equal(normalizeDate('2012-03-21T05:40:12.000Z'), '2012-03-21T05:40:12Z');
  assert.equal(normalizeDate('2012-03-21T05:40:12+02:00'), '2012-03-21T05:40:12+02:00');
  assert.equal(normalizeDate('not a date'), 'not a date');
  assert.equal(jsonToXml({ d: '/Date(0)/' }, J), '<d>1970-01-01T00:00:00Z</d>');
  assert.equal(jsonToXml({ d: '/Date(0)/' }, { ...J, parseDate: false }), '<d>/Date(0)/</d>');
});

const SOAP = `<?xml version="1.0" encoding="utf-8"?>
<!-- generated -->
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">
  <soap:Body>
    <m:Price xmlns:m="urn:prices" currency="EUR">
      <m:Item>apple</m:Item>
      <m:Item>pear</m:Item>
      <m:Total>3.50</m:Total>
      <m:Empty/>
    </m:Price>
  </soap:Body>
</soap:Envelope>`;

test('xml → json, direct: declaration, comments, xmlns and prefixes kept; repeated elements become arrays', () => {
  const j = xmlToJson(parseXml(SOAP), { kind: 'direct', alwaysArrayChildElements: false });
  assert.deepEqual(JSON.parse(JSON.stringify(j)), {
    '?xml': { '@version': '1.0', '@encoding': 'utf-8' },
    '#comment': ' generated ',
    'soap:Envelope': {
      '@xmlns:soap': 'http://schemas.xmlsoap.org/soap/envelope/',
      'soap:Body': {
        'm:Price': { '@xmlns:m': 'urn:prices', '@currency': 'EUR', 'm:Item': ['apple', 'pear'], 'm:Total': '3.50', 'm:Empty': null },
      },
    },
  });
});

test('xml → json, javascript-friendly: local names, no declaration, comments or xmlns; alwaysArrayChildElements', () => {
  const j = xmlToJson(parseXml(SOAP), { kind: 'javascript-friendly', alwaysArrayChildElements: false });
  assert.deepEqual(JSON.parse(JSON.stringify(j)), { Envelope: { Body: { Price: { '@currency': 'EUR', Item: ['apple', 'pear'], Total: '3.50', Empty: null } } } });
  const a = xmlToJson(parseXml('<r><x>1</x><y><z>2</z></y></r>'), { kind: 'javascript-friendly', alwaysArrayChildElements: true });
  assert.deepEqual(JSON.parse(JSON.stringify(a)), { r: { x: ['1'], y: [{ z: ['2'] }] } });
});

test('xml → json: mixed content keeps #text; CDATA is text; names like __proto__ are plain keys', () => {
  const j = xmlToJson(parseXml('<p a="1">one <b>two</b> three<![CDATA[<4>]]></p>'), { kind: 'direct', alwaysArrayChildElements: false }) as Record<string, unknown>;
  assert.deepEqual(JSON.parse(JSON.stringify(j)), { p: { '@a': '1', '#text': ['one ', ' three', '<4>'], b: 'two' } });
  const proto = xmlToJson(parseXml('<r><__proto__><polluted>yes</polluted></__proto__></r>'), { kind: 'direct', alwaysArrayChildElements: false });
  assert.equal(JSON.stringify(proto), '{"r":{"__proto__":{"polluted":"yes"}}}');
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
});

test('round trip: json → xml → json keeps the structure of simple documents', () => {
  const v = { order: { id: '7', lines: [{ sku: 'a', qty: '1' }, { sku: 'b', qty: '2' }], note: null } };
  const back = xmlToJson(parseXml(jsonToXml(v, J)), { kind: 'javascript-friendly', alwaysArrayChildElements: false });
  assert.deepEqual(JSON.parse(JSON.stringify(back)), v);
});
