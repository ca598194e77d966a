import { expect } from 'chai';
import { InvalidRequestError } from '../../../src/errors.js';
import { anyMatches, coveredByAny, covers, matches, parseSelector, type Selector } from '../../../src/topics/selector.js';
import { mulberry32 } from '../../helpers/random.js';
import { errorOf } from '../../helpers/errors.js';

function expectInvalidSelector(input: unknown): void {
  const error = errorOf(() => parseSelector(input));
  expect(error, JSON.stringify(input)).to.be.instanceOf(InvalidRequestError);
  expect(error, JSON.stringify(input)).to.have.property('code', 'invalid_selector');
}

/** The reference matcher: the selector as a regular expression over the whole topic name. */
const referenceCache = new Map<string, RegExp>();
function referenceMatches(selector: string, topic: string): boolean {
  let regex = referenceCache.get(selector);
  if (regex === undefined) referenceCache.set(selector, (regex = referenceRegex(selector)));
  return regex.test(topic);
}

function referenceRegex(selector: string): RegExp {
  const parts = selector.split('/').map((segment) => {
    if (segment === '*') return '[^/]+';
    if (segment === '**') return '.+';
    return segment.replace(/[.*+?^${}()|[\]\\~-]/g, '\\$&');
  });
  return new RegExp(`^${parts.join('/')}$`);
}

const sel = (source: string): Selector => parseSelector(source);

describe('parseSelector', () => {
  it('marks a selector without wildcards as exact', () => {
    const selector = sel('users/alice/inbox');
    expect(selector.exact).to.equal(true);
    expect(selector.tail).to.equal(false);
    expect(selector.source).to.equal('users/alice/inbox');
    expect(selector.segments).to.deep.equal(['users', 'alice', 'inbox']);
  });

  it('accepts * in any segment and ** as the last segment', () => {
    for (const source of ['*', '**', '*/*', 'users/*/inbox', 'users/alice/**', '*/**', 'a/*/b/**']) {
      const selector = sel(source);
      expect(selector.exact, source).to.equal(false);
      expect(selector.tail, source).to.equal(source.endsWith('**'));
    }
  });

  it('rejects ** when it is not the last segment', () => {
    for (const source of ['**/a', 'a/**/b', '**/**', 'a/**/*']) expectInvalidSelector(source);
  });

  it('rejects a wildcard when it is part of a segment', () => {
    for (const source of ['a*', '*a', 'a/b*', 'a/***', '***', 'a/*b/c', 'a/**b']) expectInvalidSelector(source);
  });

  it('rejects the same malformed shapes as topics with invalid_selector', () => {
    for (const source of ['', 'a//b', '/a', 'a/', '..', 'a/./b', 'café', 'a b', 'a%2F', 42, undefined]) {
      expectInvalidSelector(source);
    }
    expectInvalidSelector('x'.repeat(257));
    expectInvalidSelector(Array.from({ length: 17 }, () => '*').join('/'));
    expectInvalidSelector(`a/${'s'.repeat(65)}`);
  });
});

describe('matches', () => {
  const cases: Array<[string, string, boolean]> = [
    ['users/alice/inbox', 'users/alice/inbox', true],
    ['users/alice/inbox', 'users/alice/inbox2', false],
    ['users/alice/inbox', 'users/alice', false],
    ['users/*/inbox', 'users/bob/inbox', true],
    ['users/*/inbox', 'users/bob/x/inbox', false],
    ['users/*', 'users/bob', true],
    ['users/*', 'users', false],
    ['users/*', 'users/bob/inbox', false],
    ['*', 'a', true],
    ['*', 'a/b', false],
    ['a/**', 'a/b', true],
    ['a/**', 'a/b/c/d', true],
    ['a/**', 'a', false],
    ['a/**', 'b/a', false],
    ['**', 'a', true],
    ['**', 'a/b/c', true],
    ['*/**', 'a', false],
    ['*/**', 'a/b', true],
    ['a/*/**', 'a/b', false],
    ['a/*/**', 'a/b/c', true],
  ];
  for (const [selector, topic, expected] of cases) {
    it(`${expected ? 'matches' : 'does not match'} ${topic} when the selector is ${selector}`, () => {
      expect(matches(sel(selector), topic)).to.equal(expected);
    });
  }

  it('answers for a list of selectors with anyMatches', () => {
    expect(anyMatches([sel('a/*'), sel('b/**')], 'b/c/d')).to.equal(true);
    expect(anyMatches([sel('a/*'), sel('b/**')], 'a/c/d')).to.equal(false);
    expect(anyMatches([], 'a')).to.equal(false);
  });
});

describe('covers', () => {
  const table: Array<[granted: string, requested: string, expected: boolean]> = [
    ['users/alice/**', 'users/alice/inbox', true],
    ['users/alice/**', 'users/alice/*', true],
    ['users/alice/**', 'users/alice/a/**', true],
    ['users/alice/**', 'users/alice/**', true],
    ['users/alice/**', 'users/alice/*/x', true],
    ['users/alice/**', 'users/*/inbox', false],
    ['users/alice/**', 'users/**', false],
    ['users/alice/**', 'users/alice', false],
    ['users/alice/**', 'users/bob/inbox', false],
    ['users/alice/**', '**', false],
    ['*', 'anything', true],
    ['*', '*', true],
    ['*', 'a/b', false],
    ['*', '**', false],
    ['**', 'a', true],
    ['**', 'a/b/c', true],
    ['**', '*', true],
    ['**', '*/**', true],
    ['**', '**', true],
    ['a', 'a', true],
    ['a', 'b', false],
    ['a', '*', false],
    ['a', '**', false],
    ['a/b', 'a/*', false],
    ['users/*/inbox', 'users/bob/inbox', true],
    ['users/*/inbox', 'users/*/inbox', true],
    ['users/*/inbox', 'users/**', false],
    ['users/*/inbox', 'users/bob/inbox/x', false],
    ['*/**', '**', false],
    ['*/**', 'a/**', true],
    ['*/*', '*/**', false],
    ['a/*', 'a/b/c', false],
  ];
  for (const [granted, requested, expected] of table) {
    it(`${expected ? 'covers' : 'does not cover'} ${requested} when granted ${granted}`, () => {
      expect(covers(sel(granted), sel(requested))).to.equal(expected);
    });
  }

  it('is satisfied by any one grant with coveredByAny', () => {
    expect(coveredByAny([sel('public/**'), sel('users/alice/**')], sel('users/alice/inbox'))).to.equal(true);
    expect(coveredByAny([sel('public/**'), sel('users/alice/**')], sel('users/*/inbox'))).to.equal(false);
    expect(coveredByAny([], sel('a'))).to.equal(false);
  });
});

describe('selector properties (seeded random)', () => {
  // Selectors use segments a and b; topics add z, a segment no literal names, so `*` and `**`
  // are exercised against something only a wildcard can match. Topics are enumerated up to one
  // segment longer than the longest selector, which is enough to tell any two selectors apart.
  const SELECTOR_SEGMENTS = ['a', 'b', '*'];
  const TOPIC_SEGMENTS = ['a', 'b', 'z'];
  const MAX_SELECTOR_SEGMENTS = 4;

  const topics: string[] = [];
  let layer = [''];
  for (let length = 1; length <= MAX_SELECTOR_SEGMENTS + 1; length++) {
    layer = layer.flatMap((prefix) => TOPIC_SEGMENTS.map((s) => (prefix === '' ? s : `${prefix}/${s}`)));
    topics.push(...layer);
  }

  function randomSelector(random: () => number): string {
    const length = 1 + Math.floor(random() * MAX_SELECTOR_SEGMENTS);
    const segments = Array.from({ length }, () => SELECTOR_SEGMENTS[Math.floor(random() * SELECTOR_SEGMENTS.length)]!);
    if (random() < 0.35) segments[length - 1] = '**';
    return segments.join('/');
  }

  function randomTopic(random: () => number): string {
    const length = 1 + Math.floor(random() * 6);
    return Array.from({ length }, () => TOPIC_SEGMENTS[Math.floor(random() * TOPIC_SEGMENTS.length)]!).join('/');
  }

  it('agrees with a regular-expression reference matcher on random selectors and topics', () => {
    const random = mulberry32(0x5eed);
    const mismatches: string[] = [];
    for (let i = 0; i < 3000; i++) {
      const selector = randomSelector(random);
      const topic = randomTopic(random);
      if (matches(sel(selector), topic) !== referenceMatches(selector, topic)) mismatches.push(`${selector} vs ${topic}`);
    }
    for (let i = 0; i < 200; i++) {
      const selector = randomSelector(random);
      const compiled = sel(selector);
      for (const topic of topics) {
        if (matches(compiled, topic) !== referenceMatches(selector, topic)) mismatches.push(`${selector} vs ${topic}`);
      }
    }
    expect(mismatches.slice(0, 10)).to.deep.equal([]);
  });

  it('never grants a topic the grant does not match when covers holds (soundness)', () => {
    const random = mulberry32(42);
    let covered = 0;
    const leaks: string[] = [];
    for (let i = 0; i < 3000; i++) {
      const g = random() < 0.15 ? '**' : randomSelector(random);
      const r = randomSelector(random);
      if (!covers(sel(g), sel(r))) continue;
      covered++;
      const leak = topics.find((topic) => referenceMatches(r, topic) && !referenceMatches(g, topic));
      if (leak !== undefined) leaks.push(`covers(${g}, ${r}) but ${leak} is matched by ${r} only`);
    }
    expect(leaks.slice(0, 10)).to.deep.equal([]);
    // The property is only tested if enough pairs were covered.
    expect(covered).to.be.greaterThan(300);
  });

  it('finds a witness topic whenever covers refuses (completeness)', () => {
    const random = mulberry32(7);
    const missing: string[] = [];
    let refused = 0;
    for (let i = 0; i < 3000; i++) {
      const g = randomSelector(random);
      const r = randomSelector(random);
      if (covers(sel(g), sel(r))) continue;
      refused++;
      const witness = topics.find((topic) => referenceMatches(r, topic) && !referenceMatches(g, topic));
      if (witness === undefined) missing.push(`covers(${g}, ${r}) is false, yet ${g} matches every topic ${r} does`);
    }
    expect(missing.slice(0, 10)).to.deep.equal([]);
    expect(refused).to.be.greaterThan(300);
  });
});
