/**
 * Safe codec for the subset of Python literal syntax that legacy clients use.
 *
 * Legacy clients POST `repr(some_list)` as the raw body and read our answer with
 * `eval()` / `ast.literal_eval()`. The original server answered by calling eval on the
 * body (remote code execution). This module replaces that with a small hand-written
 * recursive-descent parser (no eval, no Function, no JSON.parse, no regex) and a
 * serializer whose output is pure ASCII and valid for both `eval` and `literal_eval`.
 *
 * Parsing is a single left-to-right pass over the input: linear time, bounded recursion
 * (maxDepth) and bounded output size (maxInputChars, maxElements).
 */

export type PyValue = null | boolean | number | string | Uint8Array | PyValue[] | PyDict;

/** A Python dict with string keys. The parser creates it with Object.create(null). */
export interface PyDict {
  [key: string]: PyValue;
}

/** Bad input. `offset` is a UTF-16 index into the text; the message never quotes the input. */
export class PyLiteralError extends Error {
  readonly offset: number;

  constructor(problem: string, offset: number) {
    super(`${problem} at offset ${offset}`);
    this.name = 'PyLiteralError';
    this.offset = offset;
  }
}

export const PY_LITERAL_LIMITS: Readonly<{ maxInputChars: number; maxDepth: number; maxElements: number }> =
  Object.freeze({
    /** Input length in UTF-16 code units (what `string.length` counts). */
    maxInputChars: 1_048_576,
    /** Nesting of brackets of any kind, including a parenthesised single value. */
    maxDepth: 32,
    /** List/tuple items plus dict entries, counted over the whole input. */
    maxElements: 100_000,
  });

// ---------------------------------------------------------------------------
// Character helpers (plain char-code comparisons: no regex, so no backtracking).

const CH_0 = 0x30;
const CH_7 = 0x37;
const CH_9 = 0x39;

function isDigit(c: number): boolean {
  return c >= CH_0 && c <= CH_9;
}

function isHexDigit(c: number): boolean {
  return isDigit(c) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
}

/** ASCII identifier characters; Python also allows non-ASCII letters, which we reject as "unexpected character". */
function isNameStart(c: number): boolean {
  return (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x5f;
}

function isNameChar(c: number): boolean {
  return isNameStart(c) || isDigit(c);
}

/**
 * Messages never repeat request content (a malformed body may hold key bytes): they say what kind of
 * thing was found and where (the offset), not what it was.
 */
function showChar(ch: string): string {
  const c = ch.charCodeAt(0);
  if (c < 0x20 || c === 0x7f) return 'control character';
  if (c >= 0x80) return 'non-ASCII character';
  if (isNameChar(c)) return 'letter or digit';
  return 'punctuation character';
}

function showName(name: string): string {
  return `of ${name.length} character${name.length === 1 ? '' : 's'}`;
}

// Simple (single character) escapes shared by str and bytes literals, mapped to their code.
const SIMPLE_ESCAPES: ReadonlyMap<string, number> = new Map([
  ['\\', 0x5c],
  ["'", 0x27],
  ['"', 0x22],
  ['a', 0x07],
  ['b', 0x08],
  ['f', 0x0c],
  ['n', 0x0a],
  ['r', 0x0d],
  ['t', 0x09],
  ['v', 0x0b],
]);

// ---------------------------------------------------------------------------
// Parser

class Parser {
  private pos = 0;
  private depth = 0;
  private elements = 0;

  constructor(private readonly text: string) {}

  parseDocument(): PyValue {
    this.skipWhitespace();
    const value = this.parseValue();
    this.skipWhitespace();
    if (this.pos < this.text.length) {
      throw this.unexpected('end of input after the value');
    }
    return value;
  }

  // --- errors -------------------------------------------------------------

  private fail(problem: string, offset: number = this.pos): PyLiteralError {
    return new PyLiteralError(problem, offset);
  }

  /** "unexpected X at offset N (expected Y)", naming a whole identifier when one is found. */
  private unexpected(expected: string): PyLiteralError {
    const { text, pos } = this;
    if (pos >= text.length) return new PyLiteralError(`unexpected end of input (expected ${expected})`, pos);
    const c = text.charCodeAt(pos);
    if (c === 0) return new PyLiteralError('NUL characters are not allowed', pos);
    if (c === 0x23) return new PyLiteralError("comments ('#') are not supported", pos);
    if (isNameStart(c)) {
      let end = pos;
      while (end < text.length && isNameChar(text.charCodeAt(end))) end++;
      return new PyLiteralError(`unexpected name ${showName(text.slice(pos, end))} (expected ${expected})`, pos);
    }
    return new PyLiteralError(`unexpected ${showChar(text[pos])} (expected ${expected})`, pos);
  }

  // --- lexical helpers ----------------------------------------------------

  /** Python allows space, tab, form feed and line breaks between tokens inside brackets; we allow them everywhere. */
  private skipWhitespace(): void {
    const { text } = this;
    while (this.pos < text.length) {
      const c = text.charCodeAt(this.pos);
      if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d || c === 0x0c) this.pos++;
      else break;
    }
  }

  private countElement(offset: number): void {
    this.elements++;
    if (this.elements > PY_LITERAL_LIMITS.maxElements) {
      throw this.fail(`too many elements (limit is ${PY_LITERAL_LIMITS.maxElements} in total)`, offset);
    }
  }

  private enterContainer(offset: number): void {
    this.depth++;
    if (this.depth > PY_LITERAL_LIMITS.maxDepth) {
      throw this.fail(`nesting too deep (limit is ${PY_LITERAL_LIMITS.maxDepth} levels)`, offset);
    }
  }

  // --- values -------------------------------------------------------------

  private parseValue(): PyValue {
    const { text, pos } = this;
    if (pos >= text.length) throw this.unexpected('a value');
    const c = text.charCodeAt(pos);
    switch (c) {
      case 0x5b: // [
        return this.parseList();
      case 0x28: // (
        return this.parseParen();
      case 0x7b: // {
        return this.parseDict();
      case 0x27: // '
      case 0x22: // "
        return this.parseString(pos, '');
      case 0x2b: // +
      case 0x2d: // -
        return this.parseSigned();
      default:
        break;
    }
    if (isDigit(c) || (c === 0x2e && isDigit(text.charCodeAt(pos + 1)))) return this.parseNumber(false);
    if (isNameStart(c)) return this.parseNameOrPrefixedString();
    throw this.unexpected('a value');
  }

  private parseSigned(): number {
    const negative = this.text[this.pos] === '-';
    this.pos++;
    // ast.literal_eval accepts exactly one sign, optionally followed by whitespace, before a number.
    this.skipWhitespace();
    const c = this.text.charCodeAt(this.pos);
    if (isDigit(c) || (c === 0x2e && isDigit(this.text.charCodeAt(this.pos + 1)))) return this.parseNumber(negative);
    throw this.unexpected(`a number after '${negative ? '-' : '+'}'`);
  }

  /** `None`, `True`, `False`, or a prefixed string such as `b'..'`; any other name is refused. */
  private parseNameOrPrefixedString(): PyValue {
    const { text } = this;
    const start = this.pos;
    let end = start;
    while (end < text.length && isNameChar(text.charCodeAt(end))) end++;
    const name = text.slice(start, end);
    const next = text[end];
    if (next === "'" || next === '"') {
      const prefix = name.toLowerCase();
      if (prefix === 'u' || prefix === 'r' || prefix === 'b' || prefix === 'br' || prefix === 'rb') {
        this.pos = end;
        return this.parseString(start, prefix);
      }
      if (prefix === 'f' || prefix === 'fr' || prefix === 'rf') {
        throw this.fail('f-strings are not supported', start);
      }
      throw this.fail(`unsupported string prefix ${showName(name)}`, start);
    }
    this.pos = end;
    if (name === 'None') return null;
    if (name === 'True') return true;
    if (name === 'False') return false;
    throw this.fail(`unexpected name ${showName(name)} (only None, True and False are allowed)`, start);
  }

  /** Digits with single underscores between them (Python's `digitpart`). Stops before a trailing `_`. */
  private scanDigitPart(): void {
    const { text } = this;
    this.pos++; // caller checked the first digit
    for (;;) {
      const c = text.charCodeAt(this.pos);
      if (isDigit(c)) this.pos++;
      else if (c === 0x5f && isDigit(text.charCodeAt(this.pos + 1))) this.pos += 2;
      else return;
    }
  }

  private parseNumber(negative: boolean): number {
    const { text } = this;
    const start = this.pos;
    let isFloat = false;

    if (isDigit(text.charCodeAt(this.pos))) {
      this.scanDigitPart();
      const c = text[this.pos];
      if (this.pos === start + 1 && text[start] === '0' && c !== undefined && 'xXoObB'.includes(c)) {
        throw this.fail('hexadecimal, octal and binary integer literals are not supported', start);
      }
    }
    if (text[this.pos] === '.') {
      isFloat = true;
      this.pos++;
      if (isDigit(text.charCodeAt(this.pos))) this.scanDigitPart();
    }
    const e = text[this.pos];
    if (e === 'e' || e === 'E') {
      isFloat = true;
      this.pos++;
      const sign = text[this.pos];
      if (sign === '+' || sign === '-') this.pos++;
      if (!isDigit(text.charCodeAt(this.pos))) throw this.fail('invalid number literal (bad exponent)', start);
      this.scanDigitPart();
    }

    // Anything glued to the number (`1j`, `1_`, `1.5.3`, `1abc`) makes it invalid, as in Python.
    const after = text.charCodeAt(this.pos);
    if (after === 0x6a || after === 0x4a) throw this.fail('complex number literals are not supported', start);
    if (isNameChar(after) || after === 0x2e) throw this.fail('invalid number literal', start);

    const literal = text.slice(start, this.pos).replaceAll('_', '');
    if (!isFloat) {
      // Python allows `0`, `00`, `0_0` but not `012` (ambiguous with old octal).
      if (literal[0] === '0' && literal !== '0'.repeat(literal.length)) {
        throw this.fail('leading zeros in integer literals are not allowed', start);
      }
      const magnitude = Number(literal); // the text is validated decimal digits, so Number() is exact or rounds
      if (!Number.isSafeInteger(magnitude)) {
        throw this.fail(`integer literal is outside the safe range (±${Number.MAX_SAFE_INTEGER})`, start);
      }
      return negative ? 0 - magnitude : magnitude; // `0 - 0` keeps an integer -0 as 0, like Python
    }
    const magnitude = Number(literal);
    if (!Number.isFinite(magnitude)) throw this.fail('float literal is out of range (not finite)', start);
    return negative ? -magnitude : magnitude;
  }

  /**
   * A single-line string or bytes literal. `pos` is at the opening quote; `prefix` is lower-case
   * and already consumed. `start` is where the literal (including its prefix) begins.
   */
  private parseString(start: number, prefix: string): string | Uint8Array {
    const { text } = this;
    const quote = text[this.pos];
    if (text[this.pos + 1] === quote && text[this.pos + 2] === quote) {
      throw this.fail('triple-quoted strings are not supported', start);
    }
    const raw = prefix.includes('r');
    const isBytes = prefix.includes('b');
    this.pos++;

    // str: collect UTF-16 chunks (plain runs are sliced, not copied char by char). bytes: collect byte values.
    const chunks: string[] = [];
    const bytes: number[] = [];
    let runStart = this.pos;
    const flushRun = (): void => {
      if (!isBytes && this.pos > runStart) chunks.push(text.slice(runStart, this.pos));
    };

    for (;;) {
      if (this.pos >= text.length) throw this.fail('unterminated string literal', start);
      const ch = text[this.pos];
      const c = text.charCodeAt(this.pos);
      if (ch === quote) {
        flushRun();
        this.pos++;
        return isBytes ? Uint8Array.from(bytes) : chunks.join('');
      }
      if (c === 0x0a || c === 0x0d) throw this.fail('unterminated string literal (line break inside the string)', start);
      // Python refuses NUL anywhere in source code, including inside string literals.
      if (c === 0) throw this.fail('NUL characters are not allowed', this.pos);
      if (isBytes && c > 0x7f) throw this.fail('bytes literals may only contain ASCII characters', this.pos);

      if (ch !== '\\') {
        if (isBytes) bytes.push(c);
        this.pos++;
        continue;
      }

      flushRun();
      const escStart = this.pos;
      if (escStart + 1 >= text.length) throw this.fail('unterminated string literal', start);
      if (raw) {
        // Raw: the backslash and the next character are both kept, and that character never ends the string.
        this.pos += text[escStart + 1] === '\r' && text[escStart + 2] === '\n' ? 3 : 2; // CRLF is one line break
        const next = text.charCodeAt(escStart + 1);
        if (next === 0) throw this.fail('NUL characters are not allowed', escStart + 1);
        if (isBytes && next > 0x7f) throw this.fail('bytes literals may only contain ASCII characters', escStart + 1);
        const nextCode = next === 0x0d ? 0x0a : next; // Python reads any line break in source as \n
        if (isBytes) bytes.push(0x5c, nextCode);
        else chunks.push('\\' + String.fromCharCode(nextCode));
      } else {
        this.readEscape(isBytes, chunks, bytes);
      }
      runStart = this.pos;
    }
  }

  /** One escape sequence in a non-raw literal; `pos` is at the backslash. Unknown escapes are refused (Python only warns). */
  private readEscape(isBytes: boolean, chunks: string[], bytes: number[]): void {
    const { text } = this;
    const escStart = this.pos;
    const e = text[this.pos + 1];
    this.pos += 2;

    const emit = (code: number): void => {
      if (isBytes) bytes.push(code);
      else chunks.push(String.fromCodePoint(code));
    };

    // Backslash + line break is a line continuation: it produces nothing.
    if (e === '\n') return;
    if (e === '\r') {
      if (text[this.pos] === '\n') this.pos++;
      return;
    }

    const simple = SIMPLE_ESCAPES.get(e);
    if (simple !== undefined) return emit(simple);

    const c = e.charCodeAt(0);
    if (c >= CH_0 && c <= CH_7) {
      // \o, \oo or \ooo. Values above 0o377 are invalid in bytes and deprecated in str, so refuse both.
      let value = c - CH_0;
      for (let k = 0; k < 2; k++) {
        const d = text.charCodeAt(this.pos);
        if (!(d >= CH_0 && d <= CH_7)) break;
        value = value * 8 + (d - CH_0);
        this.pos++;
      }
      if (value > 0xff) throw this.fail('octal escape value is above \\377', escStart);
      return emit(value);
    }

    if (e === 'x') return emit(this.readHex(2, escStart, '\\x'));
    if (!isBytes && e === 'u') return emit(this.readHex(4, escStart, '\\u'));
    if (!isBytes && e === 'U') {
      const code = this.readHex(8, escStart, '\\U');
      if (code > 0x10ffff) throw this.fail('\\U escape is not a valid code point', escStart);
      return emit(code);
    }
    if (!isBytes && e === 'N') throw this.fail('named unicode escapes (\\N{...}) are not supported', escStart);
    const where = isBytes ? 'bytes literal' : 'string literal';
    throw this.fail(`invalid escape sequence (backslash followed by a ${showChar(e)}) in ${where}`, escStart);
  }

  private readHex(count: number, escStart: number, name: string): number {
    const { text } = this;
    let value = 0;
    for (let k = 0; k < count; k++) {
      const d = text.charCodeAt(this.pos);
      if (!isHexDigit(d)) throw this.fail(`truncated ${name} escape (needs ${count} hex digits)`, escStart);
      value = value * 16 + parseInt(text[this.pos], 16);
      this.pos++;
    }
    return value;
  }

  // --- containers ---------------------------------------------------------

  /** Items after the first up to and including `closer`, allowing one trailing comma. `pos` is just after an item. */
  private parseSequenceTail(items: PyValue[], closer: string): PyValue[] {
    const { text } = this;
    for (;;) {
      this.skipWhitespace();
      const ch = text[this.pos];
      if (ch === closer) {
        this.pos++;
        break;
      }
      if (ch !== ',') throw this.unexpected(`',' or '${closer}'`);
      this.pos++;
      this.skipWhitespace();
      if (text[this.pos] === closer) {
        this.pos++;
        break;
      }
      this.countElement(this.pos);
      items.push(this.parseValue());
    }
    this.depth--;
    return items;
  }

  private parseList(): PyValue[] {
    this.enterContainer(this.pos);
    this.pos++;
    this.skipWhitespace();
    if (this.text[this.pos] === ']') {
      this.pos++;
      this.depth--;
      return [];
    }
    this.countElement(this.pos);
    return this.parseSequenceTail([this.parseValue()], ']');
  }

  /** `()` and `(a,)` / `(a, b)` are tuples (→ arrays); `(a)` is just `a`. */
  private parseParen(): PyValue {
    this.enterContainer(this.pos);
    this.pos++;
    this.skipWhitespace();
    if (this.text[this.pos] === ')') {
      this.pos++;
      this.depth--;
      return [];
    }
    const itemStart = this.pos;
    const first = this.parseValue();
    this.skipWhitespace();
    if (this.text[this.pos] === ')') {
      this.pos++;
      this.depth--;
      return first;
    }
    if (this.text[this.pos] !== ',') throw this.unexpected("',' or ')'");
    this.countElement(itemStart);
    return this.parseSequenceTail([first], ')');
  }

  private parseDict(): PyDict {
    const { text } = this;
    this.enterContainer(this.pos);
    this.pos++;
    // Null prototype: keys such as "__proto__" or "constructor" are plain data, never prototype links.
    const dict: PyDict = Object.create(null) as PyDict;
    this.skipWhitespace();
    while (text[this.pos] !== '}') {
      const keyStart = this.pos;
      if (keyStart >= text.length) throw this.unexpected("a key or '}'");
      this.countElement(keyStart);
      const key = this.parseValue();
      this.skipWhitespace();
      const sep = text[this.pos];
      if (sep === ',' || sep === '}') throw this.fail('sets are not supported', keyStart);
      if (sep !== ':') throw this.unexpected("':' after the dict key");
      if (typeof key !== 'string') throw this.fail('dict keys must be strings', keyStart);
      this.pos++;
      this.skipWhitespace();
      dict[key] = this.parseValue(); // duplicate keys: the last one wins, as in Python
      this.skipWhitespace();
      if (text[this.pos] === ',') {
        this.pos++;
        this.skipWhitespace();
      } else if (text[this.pos] !== '}') {
        throw this.unexpected("',' or '}'");
      }
    }
    this.pos++;
    this.depth--;
    return dict;
  }
}

/** Parse one Python literal (the `repr()` of a list, dict, str, ...). Throws PyLiteralError on anything else. */
export function parsePyLiteral(text: string): PyValue {
  if (typeof text !== 'string') throw new TypeError('parsePyLiteral expects a string');
  if (text.length > PY_LITERAL_LIMITS.maxInputChars) {
    throw new PyLiteralError(
      `input too long (${text.length} characters, limit is ${PY_LITERAL_LIMITS.maxInputChars})`,
      PY_LITERAL_LIMITS.maxInputChars,
    );
  }
  return new Parser(text).parseDocument();
}

// ---------------------------------------------------------------------------
// Serializer

function hex(code: number, width: number): string {
  return code.toString(16).padStart(width, '0');
}

function formatNumber(n: number): string {
  if (!Number.isFinite(n)) throw new TypeError(`cannot serialize non-finite number ${String(n)}`);
  if (Object.is(n, -0)) return '-0.0'; // keep the sign: Python's int has no -0, its float does
  if (Number.isSafeInteger(n)) return String(n);
  // JS prints the shortest round-tripping form ("1.5", "1e-7", "1e+21"); Python reads all of these as float.
  // Large integral doubles print as plain digits, so mark them as float (our parser refuses unsafe ints).
  const s = String(n);
  return s.includes('.') || s.includes('e') ? s : `${s}.0`;
}

/** Single-quoted, pure-ASCII Python str literal. */
function formatString(s: string): string {
  let out = "'";
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x5c) out += '\\\\';
    else if (c === 0x27) out += "\\'";
    else if (c === 0x0a) out += '\\n';
    else if (c === 0x0d) out += '\\r';
    else if (c === 0x09) out += '\\t';
    else if (c >= 0x20 && c < 0x7f) out += s[i];
    else if (c < 0x100) out += `\\x${hex(c, 2)}`;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      // A surrogate pair must become one \U escape: two \u escapes would be two lone surrogates in Python.
      out += `\\U${hex(s.codePointAt(i) as number, 8)}`;
      i++;
    } else out += `\\u${hex(c, 4)}`; // BMP character or a lone surrogate (Python allows those in str)
  }
  return out + "'";
}

function formatBytes(bytes: Uint8Array): string {
  let out = "b'";
  for (const b of bytes) out += `\\x${hex(b, 2)}`;
  return out + "'";
}

function isPlainObject(v: object): boolean {
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

function serialize(value: unknown, ancestors: Set<object>): string {
  if (value === null) return 'None';
  if (value === true) return 'True';
  if (value === false) return 'False';
  if (typeof value === 'number') return formatNumber(value);
  if (typeof value === 'string') return formatString(value);
  if (typeof value !== 'object') throw new TypeError(`cannot serialize a value of type ${typeof value}`);
  if (value instanceof Uint8Array) return formatBytes(value);

  const isArray = Array.isArray(value);
  if (!isArray && !isPlainObject(value)) {
    throw new TypeError(`cannot serialize an object of class ${value.constructor?.name ?? 'unknown'}`);
  }
  if (ancestors.has(value)) throw new TypeError('cannot serialize a circular structure');
  // Refuse what our own parser would refuse, so every output can be read back (and recursion stays bounded).
  if (ancestors.size >= PY_LITERAL_LIMITS.maxDepth) {
    throw new TypeError(`cannot serialize nesting deeper than ${PY_LITERAL_LIMITS.maxDepth} levels`);
  }
  ancestors.add(value);
  let out: string;
  if (isArray) {
    const parts: string[] = [];
    // Index loop (not map) so that holes in sparse arrays are seen as undefined and refused.
    for (let i = 0; i < value.length; i++) parts.push(serialize(value[i], ancestors));
    out = `[${parts.join(', ')}]`;
  } else {
    if (Object.getOwnPropertySymbols(value).length > 0) throw new TypeError('cannot serialize symbol keys');
    const record = value as Record<string, unknown>;
    const parts = Object.keys(record).map((k) => `${formatString(k)}: ${serialize(record[k], ancestors)}`);
    out = `{${parts.join(', ')}}`;
  }
  ancestors.delete(value);
  return out;
}

/**
 * Serialize to a pure-ASCII Python literal that `eval` and `ast.literal_eval` read back as the same value.
 * Throws TypeError for undefined, NaN/Infinity, bigint, functions, symbols, class instances, cycles and
 * nesting deeper than PY_LITERAL_LIMITS.maxDepth.
 */
export function toPyLiteral(value: PyValue): string {
  return serialize(value, new Set());
}
