import { expect } from 'chai';
import fc from 'fast-check';
import { InvalidRequestError } from '../../../src/errors.js';
import { covers, matches, parseSelector, type Selector } from '../../../src/topics/selector.js';
import { parseTopic, TOPIC_LIMITS } from '../../../src/topics/topic.js';

/**
 * Property-based tests of the topic grammar and the selector matcher (issue 3). The authorisation
 * of every stream rests on `covers` and every delivery on `matches`, so the properties are the
 * security ones: nothing outside a selector is matched, a request is covered only when every
 * topic it can match is granted, hostile spellings never parse, and no input is slow.
 */

const UNRESERVED = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~';
/** A valid literal segment: unreserved characters, not only dots. Short, from a small alphabet, so that collisions (and so matches) are frequent. */
const literal = fc.string({ unit: fc.constantFrom(...'ab.-_~Z9'), minLength: 1, maxLength: 3 }).filter((s) => !/^\.+$/.test(s));
const anyLiteral = fc
  .string({ unit: fc.constantFrom(...UNRESERVED), minLength: 1, maxLength: TOPIC_LIMITS.maxSegmentLength })
  .filter((s) => !/^\.+$/.test(s));

const topicSegments = fc.array(literal, { minLength: 1, maxLength: 6 });
/** Selector segments: literals and `*`, optionally ending in `**`. */
const selectorSegments = fc
  .tuple(
    fc.array(fc.oneof({ weight: 3, arbitrary: literal }, { weight: 1, arbitrary: fc.constant('*') }), { minLength: 0, maxLength: 5 }),
    fc.boolean(),
  )
  .map(([segments, tail]) => (tail ? [...segments, '**'] : segments))
  .filter((segments) => segments.length > 0);

/** The meaning of a selector, written as plainly as possible (README "Concepts"). */
function reference(selector: readonly string[], topic: readonly string[]): boolean {
  const tail = selector.at(-1) === '**';
  const fixed = tail ? selector.slice(0, -1) : selector;
  if (tail ? topic.length < fixed.length + 1 : topic.length !== fixed.length) return false;
  return fixed.every((segment, i) => segment === '*' || segment === topic[i]);
}

/** Topics a selector matches: fill each `*` and the `**` with literals. */
function instantiate(selector: readonly string[], fills: readonly string[], extra: readonly string[]): string[] {
  let k = 0;
  const out: string[] = [];
  for (const segment of selector) {
    if (segment === '*') out.push(fills[k++ % fills.length]!);
    else if (segment === '**') out.push(...(extra.length > 0 ? extra : ['x']));
    else out.push(segment);
  }
  return out;
}

const join = (segments: readonly string[]) => segments.join('/');
const valid = (segments: readonly string[]) =>
  join(segments).length <= TOPIC_LIMITS.maxLength && segments.length <= TOPIC_LIMITS.maxSegments;

describe('topics and selectors (property-based)', () => {
  it('matches exactly what the plain definition matches, for any selector and topic', () => {
    fc.assert(
      fc.property(selectorSegments, topicSegments, (sel, topic) => {
        const selector = parseSelector(join(sel));
        expect(matches(selector, join(topic))).to.equal(reference(sel, topic));
      }),
      { numRuns: 5000 },
    );
  });

  it('matches every topic built from the selector, and none where one literal segment was changed', () => {
    fc.assert(
      fc.property(
        selectorSegments,
        fc.array(literal, { minLength: 1, maxLength: 4 }),
        fc.array(literal, { maxLength: 3 }),
        literal,
        fc.nat(),
        (sel, fills, extra, other, at) => {
          const topic = instantiate(sel, fills, extra);
          fc.pre(valid(topic));
          const selector = parseSelector(join(sel));
          expect(matches(selector, join(topic))).to.equal(true);
          const literalAt = sel.map((segment, i) => (segment === '*' || segment === '**' ? -1 : i)).filter((i) => i >= 0);
          fc.pre(literalAt.length > 0);
          const i = literalAt[at % literalAt.length]!;
          fc.pre(other !== sel[i]);
          const changed = [...topic];
          changed[i] = other;
          expect(matches(selector, join(changed)), `${join(sel)} must not match ${join(changed)}`).to.equal(false);
        },
      ),
      { numRuns: 3000 },
    );
  });

  it('matches no topic one segment shorter, nor (without **) one segment longer; ** never matches its own prefix', () => {
    fc.assert(
      fc.property(selectorSegments, fc.array(literal, { minLength: 1, maxLength: 4 }), literal, (sel, fills, more) => {
        const topic = instantiate(sel, fills, ['x']);
        fc.pre(valid([...topic, more]));
        const selector = parseSelector(join(sel));
        const tail = sel.at(-1) === '**';
        const fixed = tail ? sel.length - 1 : sel.length;
        const prefix = topic.slice(0, fixed);
        if (tail && prefix.length > 0) expect(matches(selector, join(prefix)), `${join(sel)} vs ${join(prefix)}`).to.equal(false);
        if (!tail) expect(matches(selector, join([...topic, more]))).to.equal(false);
        if (topic.length > 1) expect(matches(selector, join(topic.slice(0, -1)))).to.equal(tail && topic.length - 1 > fixed);
      }),
      { numRuns: 3000 },
    );
  });

  it('grants by covers only what the granted selector matches: every topic of a covered request is matched by the grant', () => {
    fc.assert(
      fc.property(
        selectorSegments,
        selectorSegments,
        fc.array(literal, { minLength: 1, maxLength: 4 }),
        fc.array(literal, { maxLength: 3 }),
        (granted, requested, fills, extra) => {
          const g = parseSelector(join(granted));
          const r = parseSelector(join(requested));
          // Fill the request's wildcards with literals and with fresh names the grant cannot know.
          for (const candidate of [instantiate(requested, fills, extra), instantiate(requested, ['zz~'], ['zz~', 'zz~'])]) {
            if (!valid(candidate)) continue;
            if (covers(g, r))
              expect(matches(g, join(candidate)), `${join(granted)} covers ${join(requested)} but not ${join(candidate)}`).to.equal(true);
          }
        },
      ),
      { numRuns: 5000 },
    );
  });

  it('never covers a request with a wildcard where the grant has a literal', () => {
    fc.assert(
      fc.property(selectorSegments, fc.nat(), (granted, at) => {
        const literalAt = granted.map((segment, i) => (segment === '*' || segment === '**' ? -1 : i)).filter((i) => i >= 0);
        fc.pre(literalAt.length > 0);
        const i = literalAt[at % literalAt.length]!;
        const widened = [...granted];
        widened[i] = '*';
        expect(covers(parseSelector(join(granted)), parseSelector(join(widened)))).to.equal(false);
        if (i === granted.length - 1)
          expect(covers(parseSelector(join(granted)), parseSelector(join([...granted.slice(0, i), '**'])))).to.equal(false);
      }),
      { numRuns: 3000 },
    );
  });

  it('accepts every name made of unreserved characters within the limits, and returns it unchanged', () => {
    fc.assert(
      fc.property(fc.array(anyLiteral, { minLength: 1, maxLength: TOPIC_LIMITS.maxSegments }), (segments) => {
        fc.pre(join(segments).length <= TOPIC_LIMITS.maxLength);
        expect(parseTopic(join(segments))).to.equal(join(segments));
      }),
    );
  });

  it('refuses every name holding a character outside A-Z a-z 0-9 - . _ ~ and / (Unicode, controls, %, \\, *): one topic, one spelling', () => {
    const outside = fc.string({ minLength: 1, maxLength: 1, unit: 'grapheme' }).filter((c) => !/^[A-Za-z0-9._~/-]$/.test(c));
    fc.assert(
      fc.property(fc.array(literal, { minLength: 1, maxLength: 4 }), outside, fc.nat(), (segments, bad, at) => {
        const text = join(segments);
        const i = at % (text.length + 1);
        const hostile = `${text.slice(0, i)}${bad}${text.slice(i)}`;
        expect(() => parseTopic(hostile)).to.throw(InvalidRequestError);
      }),
      { numRuns: 3000 },
    );
  });

  it('refuses empty, dot-only, over-long and over-deep names whatever they hold', () => {
    fc.assert(
      fc.property(fc.array(literal, { minLength: 0, maxLength: 3 }), fc.constantFrom('', '.', '..', '...'), (segments, bad) => {
        expect(() => parseTopic(join([...segments, bad]))).to.throw(InvalidRequestError);
        expect(() => parseTopic(join([bad, ...segments]))).to.throw(InvalidRequestError);
      }),
    );
    expect(() => parseTopic('a/'.repeat(16) + 'a')).to.throw(InvalidRequestError);
    expect(() => parseTopic('a'.repeat(65))).to.throw(InvalidRequestError);
    expect(() => parseTopic(Array(4).fill('a'.repeat(64)).join('/'))).to.throw(InvalidRequestError);
  });

  it('parses, refuses and matches any input, however hostile, in bounded time', () => {
    const hostile = fc.oneof(
      fc.string({ maxLength: 5000 }),
      fc.string({ unit: fc.constantFrom('*', '/', '**', 'a', '.', '%2F'), maxLength: 5000 }),
      fc.nat({ max: 100_000 }).map((n) => '*/'.repeat(n)),
      fc.nat({ max: 100_000 }).map((n) => `${'a/'.repeat(n)}**`),
    );
    fc.assert(
      fc.property(hostile, hostile, (a, b) => {
        const started = performance.now();
        let selector: Selector | undefined;
        try {
          selector = parseSelector(a);
        } catch (error) {
          expect(error).to.be.instanceOf(InvalidRequestError);
        }
        let topic: string | undefined;
        try {
          topic = parseTopic(b);
        } catch (error) {
          expect(error).to.be.instanceOf(InvalidRequestError);
        }
        if (selector !== undefined && topic !== undefined) matches(selector, topic);
        expect(performance.now() - started).to.be.below(50);
      }),
      { numRuns: 500 },
    );
  });

  it('matches the worst case (16 segments of *, 256 characters) 100,000 times in well under a second', () => {
    const selector = parseSelector(Array(16).fill('*').join('/'));
    const topic = Array(16).fill('abcdefghijklmno').join('/');
    const started = performance.now();
    for (let i = 0; i < 100_000; i++) matches(selector, topic);
    expect(performance.now() - started).to.be.below(1000);
  });
});
