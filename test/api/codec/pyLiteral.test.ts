import { spawnSync } from 'node:child_process';
import { describe, it, expect } from 'vitest';
import {
  PY_LITERAL_LIMITS,
  PyLiteralError,
  parsePyLiteral,
  toPyLiteral,
  type PyDict,
  type PyValue,
} from '../../../src/api/codec/pyLiteral.js';

/** Build a dict the way the parser does (null prototype), so toEqual compares like with like. */
function dict(entries: Record<string, PyValue>): PyDict {
  return Object.assign(Object.create(null) as PyDict, entries);
}

function bytes(...values: number[]): Uint8Array {
  return Uint8Array.from(values);
}

/** Run parsePyLiteral and return the PyLiteralError it must throw (fails the test on any other outcome). */
function parseError(input: string): PyLiteralError {
  try {
    parsePyLiteral(input);
  } catch (err) {
    expect(err).toBeInstanceOf(PyLiteralError);
    return err as PyLiteralError;
  }
  throw new Error('expected a PyLiteralError, but parsing succeeded');
}

const ALL_BYTES = Uint8Array.from({ length: 256 }, (_, i) => i);

// A broad set of values that must survive toPyLiteral -> parsePyLiteral (and Python, below).
const ROUND_TRIP_VALUES: PyValue[] = [
  null,
  true,
  false,
  0,
  -1,
  42,
  Number.MAX_SAFE_INTEGER,
  -Number.MAX_SAFE_INTEGER,
  1.5,
  -0.25,
  1e-7,
  6.02214076e23,
  1e21,
  2 ** 60,
  -0,
  Number.MIN_VALUE,
  Number.MAX_VALUE,
  0.1 + 0.2,
  '',
  'plain ascii',
  "quotes ' and \" and \\ backslash",
  'controls \n\r\t\0\x07\x08\x0b\x0c\x1b\x7f',
  'latin é ü ÿ, greek λ, cjk 鍵, emoji 😀🔑, nbsp \u00a0',
  'lone surrogates \ud800 and \udfff',
  new Uint8Array(0),
  ALL_BYTES,
  bytes(0x8f, 0x00),
  [],
  [null, '127.0.0.1:5001', dict({ timeout: 5000, length: 128 }), null],
  [[[], [[1, [2, [3]]]]], dict({})],
  dict({ a: [1, 2, dict({ b: [bytes(1, 2, 3), 'x'] })], 'key with spaces': null, é: true, '': -3 }),
];

describe('toPyLiteral / parsePyLiteral round trips', () => {
  it('when each value of a broad set is serialized and parsed back, then the same value comes out', () => {
    for (const value of ROUND_TRIP_VALUES) {
      const text = toPyLiteral(value);
      expect(parsePyLiteral(text), text.slice(0, 80)).toEqual(value);
    }
  });

  it('when all values are nested in one list, then the whole list round-trips', () => {
    const text = toPyLiteral(ROUND_TRIP_VALUES);
    expect(parsePyLiteral(text)).toEqual(ROUND_TRIP_VALUES);
  });

  it('when serializing, then the output is pure printable ASCII', () => {
    const text = toPyLiteral(ROUND_TRIP_VALUES);
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      expect(c >= 0x20 && c < 0x7f, `char ${c} at ${i}`).toBe(true);
    }
  });

  it('when serializing scalars, then the exact Python spelling is produced', () => {
    expect(toPyLiteral(null)).toBe('None');
    expect(toPyLiteral(true)).toBe('True');
    expect(toPyLiteral(false)).toBe('False');
    expect(toPyLiteral(-12)).toBe('-12');
    expect(toPyLiteral(1.5)).toBe('1.5');
    expect(toPyLiteral(-0)).toBe('-0.0');
    expect(toPyLiteral(2 ** 60)).toBe('1152921504606847000.0') // shortest round-trip digits, read as a float;
    expect(toPyLiteral("it's\n")).toBe("'it\\'s\\n'");
    expect(toPyLiteral('é\u20ac😀\x00')).toBe("'\\xe9\\u20ac\\U0001f600\\x00'");
    expect(toPyLiteral(bytes(0x8f, 0x00, 0x41))).toBe("b'\\x8f\\x00\\x41'");
    expect(toPyLiteral([1, [], dict({ k: 'v' })])).toBe("[1, [], {'k': 'v'}]");
  });

  it('when serializing unsupported values, then a TypeError is thrown', () => {
    const cyclic: PyValue[] = [];
    cyclic.push(cyclic);
    let deep: PyValue = 1;
    for (let i = 0; i < PY_LITERAL_LIMITS.maxDepth + 1; i++) deep = [deep];
    const bad: unknown[] = [
      undefined,
      NaN,
      Infinity,
      -Infinity,
      10n,
      Symbol('s'),
      () => 1,
      new Date(0),
      new Map(),
      new Uint16Array(2),
      [1, undefined],
      [, 1], // sparse array hole
      { a: undefined },
      { [Symbol('k')]: 1 },
      cyclic,
      deep,
    ];
    for (const value of bad) {
      expect(() => toPyLiteral(value as PyValue)).toThrow(TypeError);
    }
  });
});

describe('parsePyLiteral on legacy request bodies', () => {
  it('when given the get-key request body, then it parses exactly', () => {
    const value = parsePyLiteral("[None, '127.0.0.1:5001', {'timeout': 5000, 'length': 128}, None]");
    expect(value).toEqual([null, '127.0.0.1:5001', dict({ timeout: 5000, length: 128 }), null]);
    const options = (value as PyValue[])[2] as PyDict;
    expect(Object.getPrototypeOf(options)).toBeNull();
  });

  it('when given a key-id request body with an empty dict, then it parses exactly', () => {
    expect(parsePyLiteral("['6f1c2a9e-3b4d-4c5e-8f70-123456789abc', -1, {}]")).toEqual([
      '6f1c2a9e-3b4d-4c5e-8f70-123456789abc',
      -1,
      dict({}),
    ]);
  });

  it('when strings escape their own quote, then the quotes are kept', () => {
    expect(parsePyLiteral(`["a\\"b", 'c\\'d']`)).toEqual(['a"b', "c'd"]);
  });

  it('when given tuples, then they become arrays and a parenthesised value is just the value', () => {
    expect(parsePyLiteral('(1,)')).toEqual([1]);
    expect(parsePyLiteral('()')).toEqual([]);
    expect(parsePyLiteral('(1, 2,)')).toEqual([1, 2]);
    expect(parsePyLiteral('(1)')).toBe(1);
    expect(parsePyLiteral("(('a'))")).toBe('a');
    expect(parsePyLiteral('([1])')).toEqual([1]);
  });

  it('when given a bytes literal, then a Uint8Array comes out', () => {
    const value = parsePyLiteral("b'\\x8f\\x00'");
    expect(value).toBeInstanceOf(Uint8Array);
    expect(value).toEqual(bytes(0x8f, 0x00));
  });
});

describe('parsePyLiteral grammar', () => {
  it('when given surrounding and internal whitespace, then it is ignored', () => {
    expect(parsePyLiteral(' \t\n[ 1 ,\n\t2 , { "a" :\r\n 3 } ]\n\n')).toEqual([1, 2, dict({ a: 3 })]);
  });

  it('when given integers, then signs, underscores and zero are accepted', () => {
    expect(parsePyLiteral('[-1, +3, 0, 1_000, - 7, 00, 0_0, -0]')).toEqual([-1, 3, 0, 1000, -7, 0, 0, 0]);
    expect(Object.is(parsePyLiteral('-0'), 0)).toBe(true); // Python's int has no negative zero
    expect(parsePyLiteral(String(Number.MAX_SAFE_INTEGER))).toBe(Number.MAX_SAFE_INTEGER);
    expect(parsePyLiteral(`-${Number.MAX_SAFE_INTEGER}`)).toBe(-Number.MAX_SAFE_INTEGER);
  });

  it('when given floats, then every Python spelling is accepted', () => {
    expect(parsePyLiteral('[1.5, -0.25, 1e3, 1., .5, 2E-3, 1.e3, 1_0.0_1, 012.5, 1e+21, 1e-999]')).toEqual([
      1.5, -0.25, 1000, 1, 0.5, 0.002, 1000, 10.01, 12.5, 1e21, 0,
    ]);
    expect(Object.is(parsePyLiteral('-0.0'), -0)).toBe(true);
  });

  it('when strings use escapes, then each escape is decoded as Python does', () => {
    const text = String.raw`'\\ \' \" \n \r \t \0 \a \b \f \v \x41 \u20ac \U0001F600 \101 \7 \377'`;
    expect(parsePyLiteral(text)).toBe('\\ \' " \n \r \t \0 \x07 \b \f \v A \u20ac 😀 A \x07 \xff');
    expect(parsePyLiteral("'a\\\nb'")).toBe('ab'); // backslash-newline continuation
    expect(parsePyLiteral("'a\\\r\nb'")).toBe('ab');
    expect(parsePyLiteral("'\\ud800'")).toBe('\ud800');
    expect(parsePyLiteral("'literal é 😀'")).toBe('literal é 😀');
  });

  it('when strings carry u, r or R prefixes, then raw strings keep backslashes', () => {
    expect(parsePyLiteral("u'\\n'")).toBe('\n');
    expect(parsePyLiteral("r'\\n'")).toBe('\\n');
    expect(parsePyLiteral("R'C:\\dir\\x'")).toBe('C:\\dir\\x');
    expect(parsePyLiteral("r'\\''")).toBe("\\'"); // escaped quote does not terminate, and is kept
    expect(parsePyLiteral('r"\\\\"')).toBe('\\\\');
    expect(parsePyLiteral("r'a\\\nb'")).toBe('a\\\nb');
  });

  it('when bytes literals use escapes and prefixes, then the right bytes come out', () => {
    expect(parsePyLiteral(`B"AZ\\n\\t\\0\\377\\\\\\x7f"`)).toEqual(bytes(0x41, 0x5a, 10, 9, 0, 255, 0x5c, 0x7f));
    expect(parsePyLiteral("rb'\\x00'")).toEqual(bytes(0x5c, 0x78, 0x30, 0x30));
    expect(parsePyLiteral("Br'\\''")).toEqual(bytes(0x5c, 0x27));
    expect(parsePyLiteral("b''")).toEqual(bytes());
  });

  it('when lists, tuples and dicts have trailing commas, then they are accepted', () => {
    expect(parsePyLiteral("[1, 2,]")).toEqual([1, 2]);
    expect(parsePyLiteral("{'a': 1,}")).toEqual(dict({ a: 1 }));
    expect(parsePyLiteral("{'a': [(1,), ()],\n}")).toEqual(dict({ a: [[1], []] }));
  });

  it('when a dict repeats a key, then the last value wins', () => {
    expect(parsePyLiteral("{'a': 1, 'b': 2, 'a': 3}")).toEqual(dict({ a: 3, b: 2 }));
  });

  it('when a dict uses __proto__ and constructor keys, then they are plain keys and nothing is polluted', () => {
    const value = parsePyLiteral("{'__proto__': {'polluted': 1}, 'constructor': {'prototype': 2}}") as PyDict;
    expect(Object.getPrototypeOf(value)).toBeNull();
    expect(Object.keys(value)).toEqual(['__proto__', 'constructor']);
    expect(value['__proto__']).toEqual(dict({ polluted: 1 }));
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect((Object.prototype as Record<string, unknown>).polluted).toBeUndefined();
    // and the serializer writes such a key back as data
    expect(toPyLiteral(value)).toBe("{'__proto__': {'polluted': 1}, 'constructor': {'prototype': 2}}");
  });

  it('when nesting is exactly at the depth limit, then it is accepted', () => {
    const depth = PY_LITERAL_LIMITS.maxDepth;
    expect(parsePyLiteral('['.repeat(depth) + ']'.repeat(depth))).toBeInstanceOf(Array);
  });

  it('when the element count is exactly at the limit, then it is accepted', () => {
    const text = `[${'0,'.repeat(PY_LITERAL_LIMITS.maxElements)}]`;
    expect((parsePyLiteral(text) as PyValue[]).length).toBe(PY_LITERAL_LIMITS.maxElements);
  });
});

describe('parsePyLiteral on hostile inputs', () => {
  // Each input must raise PyLiteralError (never another exception) whose message names the problem.
  const cases: Array<[label: string, input: string, message: RegExp]> = [
    ['code execution', "__import__('os').system('id')", /unexpected name of 10 characters .*at offset 0/],
    ['unclosed list', '[1, 2', /unexpected end of input .*at offset 5/],
    ['double comma', '[1,, 2]', /unexpected punctuation character .*at offset 3/],
    ['missing colon', "{'a' 1}", /expected ':' .*at offset 5/],
    ['int dict key', '{1: 2}', /dict keys must be strings at offset 1/],
    ['tuple dict key', '{(1, 2): 3}', /dict keys must be strings/],
    ['unterminated string', "'unterminated", /unterminated string literal at offset 0/],
    ['line break in string', "'a\nb'", /unterminated string literal \(line break/],
    ['\\u escape in bytes', "b'\\u1234'", /invalid escape sequence \(backslash followed by a letter or digit\) in bytes literal at offset 2/],
    ['non-ASCII in bytes', "b'é'", /bytes literals may only contain ASCII characters at offset 2/],
    ['triple-quoted string', "'''x'''", /triple-quoted strings are not supported at offset 0/],
    ['triple-quoted bytes', 'b"""x"""', /triple-quoted strings are not supported at offset 0/],
    ['binary operator', '1 + 1', /unexpected punctuation character .*at offset 2/],
    ['subscript', '[1] [2]', /unexpected punctuation character \(expected end of input after the value\) at offset 4/],
    ['set', '{1, 2}', /sets are not supported at offset 1/],
    ['string set', "{'a'}", /sets are not supported/],
    ['f-string', "f'{x}'", /f-strings are not supported at offset 0/],
    ['bad prefix', "ur'x'", /unsupported string prefix of 2 characters/],
    ['comment', '[1] # hi', /comments \('#'\) are not supported at offset 4/],
    ['lambda', 'lambda: 0', /unexpected name of 6 characters/],
    ['attribute access', "'x'.join", /unexpected punctuation character/],
    ['call of a literal', "'x'()", /unexpected punctuation character/],
    ['identifier', '[None, x]', /unexpected name of 1 character .*at offset 7/],
    ['lower-case none', 'none', /unexpected name of 4 characters/],
    ['float overflow', '1e999', /float literal is out of range \(not finite\) at offset 0/],
    ['negative float overflow', '-1e999', /not finite/],
    ['hex int', '0x10', /hexadecimal, octal and binary integer literals are not supported at offset 0/],
    ['octal int', '0o17', /hexadecimal, octal and binary/],
    ['binary int', '0b101', /hexadecimal, octal and binary/],
    ['leading zero', '012', /leading zeros in integer literals are not allowed at offset 0/],
    ['unsafe int', '9007199254740992', /integer literal is outside the safe range/],
    ['unsafe negative int', '-9007199254740992', /outside the safe range/],
    ['complex', '1j', /complex number literals are not supported/],
    ['double sign', '--1', /expected a number after '-'/],
    ['sign on name', '-True', /expected a number after '-'/],
    ['trailing underscore', '1_', /invalid number literal at offset 0/],
    ['double underscore', '1__0', /invalid number literal/],
    ['double dot', '1.5.3', /invalid number literal/],
    ['missing exponent', '1e', /bad exponent/],
    ['NUL outside strings', '[1,\0 2]', /NUL characters are not allowed at offset 3/],
    ['NUL at start', '\0', /NUL characters are not allowed at offset 0/],
    ['NUL inside string', "'a\0'", /NUL characters are not allowed at offset 2/],
    ['empty input', '', /unexpected end of input \(expected a value\) at offset 0/],
    ['whitespace only', ' \n ', /unexpected end of input/],
    ['truncated \\x', "'\\x4'", /truncated \\x escape/],
    ['truncated \\U', "'\\U0001F6'", /truncated \\U escape/],
    ['\\U beyond unicode', "'\\U00110000'", /not a valid code point/],
    ['octal above 0o377', "'\\777'", /octal escape value is above/],
    ['unknown escape', "'\\d'", /invalid escape sequence \(backslash followed by a letter or digit\) in string literal/],
    ['named escape', "'\\N{BULLET}'", /named unicode escapes/],
    ['raw string ending in backslash', "r'\\'", /unterminated string literal/],
    ['implicit concatenation', "'a' 'b'", /expected end of input/],
    ['dict unpacking', "{**{'a': 1}}", /unexpected punctuation character/],
    ['list comprehension', '[x for x in y]', /unexpected name of 1 character/],
    ['missing value', "{'a': }", /unexpected punctuation character \(expected a value\)/],
    ['unbalanced closer', ']', /unexpected punctuation character/],
    ['wrong closer', '[1)', /expected ',' or '\]'/],
    ['BOM', '\ufeff[1]', /unexpected non-ASCII character \(expected a value\) at offset 0/],
    ['non-ASCII name', 'é', /unexpected non-ASCII character/],
  ];

  it.each(cases)('when the input is hostile (%s), then PyLiteralError explains it', (_label, input, message) => {
    const err = parseError(input);
    expect(err.message).toMatch(message);
    expect(err.name).toBe('PyLiteralError');
    expect(err.offset).toBeGreaterThanOrEqual(0);
    expect(err.offset).toBeLessThanOrEqual(input.length);
  });

  it('when nesting is one level past the limit, then PyLiteralError names the depth limit', () => {
    const depth = PY_LITERAL_LIMITS.maxDepth + 1;
    for (const [open, close] of [['[', ']'], ['(', ')'], ["{'k': ", '}']]) {
      const err = parseError(open.repeat(depth) + '1' + close.repeat(depth));
      expect(err.message).toMatch(/nesting too deep \(limit is 32 levels\)/);
    }
  });

  it('when nesting is absurdly deep, then PyLiteralError is thrown, not a stack overflow', () => {
    const err = parseError('['.repeat(500_000) + ']'.repeat(500_000));
    expect(err.message).toMatch(/nesting too deep/);
    expect(err.offset).toBe(PY_LITERAL_LIMITS.maxDepth);
  });

  it('when the input is 2 MB, then PyLiteralError names the size limit without scanning it', () => {
    const err = parseError(`'${'a'.repeat(2 * 1024 * 1024)}'`);
    expect(err.message).toMatch(/input too long \(2097154 characters, limit is 1048576\)/);
  });

  it('when a list has 200k elements, then PyLiteralError names the element limit', () => {
    const err = parseError(`[${'1,'.repeat(200_000)}]`);
    expect(err.message).toMatch(/too many elements \(limit is 100000 in total\)/);
  });

  it('when elements are spread over many small lists, then the limit counts the total', () => {
    const err = parseError(`[${'[1, 2, 3, 4],'.repeat(25_000)}]`);
    expect(err.message).toMatch(/too many elements/);
  });

  it('when the input contains a secret, then the error message quotes at most 20 characters of it', () => {
    const secret = 'k3y'.repeat(30);
    for (const input of [`[None, ${secret}]`, `[${secret}(1)]`, `f'${secret}'`, `${secret}'x'`]) {
      const err = parseError(input);
      expect(err.message).not.toContain(secret.slice(0, 21));
      expect(err.message.length).toBeLessThan(160);
    }
  });

  it('when thousands of randomly mutated literals are parsed, then the only error ever thrown is PyLiteralError', () => {
    let seed = 20240611; // fixed seed: deterministic and reproducible
    const random = (): number => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
    const pieces = ["'", '"', '\\', 'x', 'u', 'U', 'N', '0', '7', '8', 'e', '.', '_', '-', ',', ':', '[', ']', '(', ')', '{', '}', ' ', '\n', 'b', 'r', 'j', 'é', '\0', '#'];
    const seeds = [
      "[None, '127.0.0.1:5001', {'timeout': 5000, 'length': 128}, None]",
      "{'a': [1.5e3, -2, r'\\x', b'\\n', (1,)]}",
      "'\\u00e9\\U0001F600\\101\\x41'",
    ];
    for (let n = 0; n < 5_000; n++) {
      let text = seeds[n % seeds.length];
      for (let k = 0; k < 3; k++) {
        const at = Math.floor(random() * (text.length + 1));
        const piece = pieces[Math.floor(random() * pieces.length)];
        text = random() < 0.5 ? text.slice(0, at) + piece + text.slice(at) : text.slice(0, at) + text.slice(at + 1);
      }
      try {
        parsePyLiteral(text);
      } catch (err) {
        if (!(err instanceof PyLiteralError)) throw new Error(`non-PyLiteralError for ${JSON.stringify(text)}: ${String(err)}`);
      }
    }
  });

  it('when worst-case inputs of about 1 MB are parsed, then each finishes quickly (linear time)', () => {
    const n = PY_LITERAL_LIMITS.maxInputChars - 4;
    const inputs = [
      `'${'\\\\'.repeat(n / 2 - 1)}'`, // every character an escape
      `b'${'\\x00'.repeat(n / 4 - 1)}'`,
      `'${'é'.repeat(n - 2)}'`,
      '9'.repeat(n), // huge integer → out of range
      `1.${'5'.repeat(n - 2)}`,
      `[${' '.repeat(n - 2)}]`,
      `[${'[],'.repeat(n / 3 - 1)}]`, // many empty lists → element limit
      `{${"'a':1,".repeat(Math.floor(n / 7) - 1)}}`,
      `'${'a'.repeat(n - 1)}`, // unterminated at the very end
    ];
    for (const input of inputs) {
      const started = performance.now();
      try {
        parsePyLiteral(input);
      } catch (err) {
        expect(err).toBeInstanceOf(PyLiteralError);
      }
      expect(performance.now() - started, input.slice(0, 12)).toBeLessThan(2_000);
    }
  });
});

// ---------------------------------------------------------------------------
// Python compatibility: our output must mean the same thing to python3's eval and ast.literal_eval,
// and python3's own repr() output must parse with our parser.

const pythonProbe = spawnSync('python3', ['--version'], { encoding: 'utf8' });
const hasPython = pythonProbe.error === undefined && pythonProbe.status === 0;
const inCI = process.env.CI === 'true';
const skipPython = !hasPython && !inCI;
const pythonSuffix = skipPython ? ' [skipped: python3 not found on PATH]' : '';

/** Run a Python script with `input` on stdin (never through a shell) and return stdout. */
function runPython(script: string, input: string): string {
  if (!hasPython) {
    throw new Error('python3 is required when CI=true (Python compatibility tests), but it was not found on PATH');
  }
  const result = spawnSync('python3', ['-I', '-c', script], {
    input,
    encoding: 'utf8',
    env: { ...process.env, PYTHONIOENCODING: 'utf-8', PYTHONWARNINGS: 'error' },
    maxBuffer: 64 * 1024 * 1024,
    timeout: 20_000,
  });
  if (result.error) throw result.error;
  expect(result.stderr, 'python3 stderr').toBe('');
  expect(result.status, 'python3 exit status').toBe(0);
  return result.stdout;
}

// Reads one literal per line; checks eval and ast.literal_eval agree; prints repr() of the result.
const EVAL_BOTH = `
import ast, sys
for line in sys.stdin.read().split('\\n'):
    if not line:
        continue
    a = ast.literal_eval(line)
    b = eval(line, {'__builtins__': {}}, {})
    assert type(a) is type(b) and repr(a) == repr(b), (line, a, b)
    print(repr(a))
`;

describe('Python compatibility', () => {
  it.skipIf(skipPython)(
    `when python3 evaluates our serialized values, then it reads back what we meant${pythonSuffix}`,
    () => {
      const lines = ROUND_TRIP_VALUES.map((v) => toPyLiteral(v));
      const reprs = runPython(EVAL_BOTH, lines.join('\n') + '\n').split('\n').slice(0, -1);
      expect(reprs).toHaveLength(ROUND_TRIP_VALUES.length);
      // Python's repr (which may contain raw non-ASCII text) parses back to the original value.
      reprs.forEach((repr, i) => expect(parsePyLiteral(repr), repr.slice(0, 80)).toEqual(ROUND_TRIP_VALUES[i]));
    },
  );

  it.skipIf(skipPython)(`when python3 reads specific values, then its repr is exactly as expected${pythonSuffix}`, () => {
    const cases: Array<[PyValue, string]> = [
      [bytes(0x8f, 0x00, 0x41, 0x27), `b"\\x8f\\x00A'"`],
      ["it's\n", `"it's\\n"`],
      ['é😀', `'é😀'`],
      ['\ud800', `'\\ud800'`],
      [-0, '-0.0'],
      [1e21, '1e+21'],
      [2 ** 60, '1.152921504606847e+18'],
      [1e-7, '1e-07'],
      [[null, true, [], dict({})], '[None, True, [], {}]'],
      [parsePyLiteral("{'__proto__': 1}"), "{'__proto__': 1}"],
    ];
    const out = runPython(EVAL_BOTH, cases.map(([v]) => toPyLiteral(v)).join('\n') + '\n');
    expect(out.split('\n').slice(0, -1)).toEqual(cases.map(([, repr]) => repr));
  });

  it.skipIf(skipPython)(`when python3 produces repr() output, then our parser reads it${pythonSuffix}`, () => {
    const script = `
print(repr([None, -1, {'k': b'\\x00\\xff'}, '\\u00e9\\n', (1,), 1.5, True]))
print(repr(bytes(range(256))))
print(repr(''.join(map(chr, range(0, 0x250))) + '\\U0001F600\\ud800'))
print(repr([(), (1, 2), {'a': {'b': [False]}}, -0.0, 1e300, 2**53 - 1, -(2**53 - 1), "'\\"", 0.1 + 0.2]))
`;
    const lines = runPython(script, '').split('\n');
    let chars = '';
    for (let c = 0; c < 0x250; c++) chars += String.fromCharCode(c);
    expect(parsePyLiteral(lines[0])).toEqual([null, -1, dict({ k: bytes(0x00, 0xff) }), 'é\n', [1], 1.5, true]);
    expect(parsePyLiteral(lines[1])).toEqual(ALL_BYTES);
    expect(parsePyLiteral(lines[2])).toBe(chars + '😀\ud800');
    expect(parsePyLiteral(lines[3])).toEqual([
      [],
      [1, 2],
      dict({ a: dict({ b: [false] }) }),
      -0,
      1e300,
      Number.MAX_SAFE_INTEGER,
      -Number.MAX_SAFE_INTEGER,
      `'"`,
      0.1 + 0.2,
    ]);
  });

  it.skipIf(skipPython)(`when python3 also rejects a hostile input, then we reject it too${pythonSuffix}`, () => {
    // Sanity check that our refusals are not stricter than needed for these classic attacks.
    const hostile = ["__import__('os').system('id')", '1 + 1', "f'{1}'", '[1] [2]', "'''x'''x"];
    const script = `
import ast, sys
for line in sys.stdin.read().split('\\n')[:-1]:
    try:
        ast.literal_eval(line)
        print('accepted')
    except (ValueError, SyntaxError, TypeError):
        print('rejected')
`;
    const out = runPython(script, hostile.join('\n') + '\n');
    expect(out.split('\n').slice(0, -1)).toEqual(hostile.map(() => 'rejected'));
    for (const input of hostile) parseError(input);
  });
});
