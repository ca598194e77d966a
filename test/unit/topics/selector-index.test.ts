import { expect } from 'chai';
import { matches, parseSelector, type Selector } from '../../../src/topics/selector.js';
import { SelectorIndex } from '../../../src/topics/selector-index.js';
import { mulberry32 } from '../../helpers/random.js';

const SEGMENTS = ['a', 'b', 'c'];
const pick = <T>(random: () => number, items: readonly T[]): T => items[Math.floor(random() * items.length)]!;

function randomSelector(random: () => number): string {
  const length = 1 + Math.floor(random() * 4);
  const segments = Array.from({ length }, () => (random() < 0.25 ? '*' : pick(random, SEGMENTS)));
  if (random() < 0.3) segments[length - 1] = '**';
  return segments.join('/');
}

function randomTopic(random: () => number): string {
  const length = 1 + Math.floor(random() * 5);
  return Array.from({ length }, () => pick(random, [...SEGMENTS, 'd'])).join('/');
}

function visited<T>(index: SelectorIndex<T>, topic: string): Set<T> {
  const found = new Set<T>();
  index.forEachMatch(topic, (item) => found.add(item));
  return found;
}

function bruteForce(subscriptions: Map<number, Selector[]>, topic: string): Set<number> {
  const found = new Set<number>();
  for (const [item, selectors] of subscriptions) if (selectors.some((s) => matches(s, topic))) found.add(item);
  return found;
}

describe('SelectorIndex', () => {
  it('finds an item when its exact selector is the topic', () => {
    const index = new SelectorIndex<string>();
    index.add(parseSelector('users/alice/inbox'), 'x');
    expect([...visited(index, 'users/alice/inbox')]).to.deep.equal(['x']);
    expect(visited(index, 'users/alice').size).to.equal(0);
    expect(visited(index, 'users/alice/inbox/more').size).to.equal(0);
  });

  it('does not visit an item for the parent topic when its selector ends in **', () => {
    const index = new SelectorIndex<string>();
    index.add(parseSelector('a/**'), 'x');
    expect(visited(index, 'a').size).to.equal(0);
    expect([...visited(index, 'a/b')]).to.deep.equal(['x']);
    expect([...visited(index, 'a/b/c/d')]).to.deep.equal(['x']);
  });

  it('visits * for exactly one segment', () => {
    const index = new SelectorIndex<string>();
    index.add(parseSelector('a/*/c'), 'x');
    expect([...visited(index, 'a/b/c')]).to.deep.equal(['x']);
    expect(visited(index, 'a/c').size).to.equal(0);
    expect(visited(index, 'a/b/b/c').size).to.equal(0);
  });

  it('returns the same set as brute force over random selectors and topics', () => {
    const random = mulberry32(1234);
    const index = new SelectorIndex<number>();
    const subscriptions = new Map<number, Selector[]>();
    for (let item = 0; item < 300; item++) {
      const sources = new Set(Array.from({ length: 1 + Math.floor(random() * 3) }, () => randomSelector(random)));
      const selectors = [...sources].map((source) => parseSelector(source));
      subscriptions.set(item, selectors);
      for (const selector of selectors) index.add(selector, item);
    }
    const mismatches: string[] = [];
    const check = () => {
      for (let i = 0; i < 500; i++) {
        const topic = randomTopic(random);
        const got = [...visited(index, topic)].sort((x, y) => x - y);
        const want = [...bruteForce(subscriptions, topic)].sort((x, y) => x - y);
        if (JSON.stringify(got) !== JSON.stringify(want)) mismatches.push(`${topic}: got ${got} want ${want}`);
      }
    };
    check();
    // Remove half the items and check again: removal must not take other items' entries with it.
    for (const [item, selectors] of [...subscriptions]) {
      if (item % 2 === 0) continue;
      for (const selector of selectors) index.remove(selector, item);
      subscriptions.delete(item);
    }
    check();
    expect(mismatches.slice(0, 5)).to.deep.equal([]);
  });

  it('is empty when every added selector has been removed', () => {
    const random = mulberry32(99);
    const index = new SelectorIndex<number>();
    const added: Array<[Selector, number]> = [];
    for (let item = 0; item < 200; item++) {
      for (const source of new Set([randomSelector(random), randomSelector(random)])) {
        const selector = parseSelector(source);
        index.add(selector, item);
        added.push([selector, item]);
      }
    }
    expect(index.empty).to.equal(false);
    // Remove in a different order from insertion.
    for (let i = added.length - 1; i >= 0; i -= 2) index.remove(...added[i]!);
    for (let i = added.length - 2; i >= 0; i -= 2) index.remove(...added[i]!);
    expect(index.empty).to.equal(true);
    for (let i = 0; i < 100; i++) expect(visited(index, randomTopic(random)).size).to.equal(0);
  });

  it('keeps other items when one item is removed from a shared selector', () => {
    const index = new SelectorIndex<string>();
    const wildcard = parseSelector('a/*/c');
    index.add(wildcard, 'x');
    index.add(wildcard, 'y');
    index.remove(wildcard, 'x');
    expect([...visited(index, 'a/b/c')]).to.deep.equal(['y']);
    index.remove(wildcard, 'y');
    expect(index.empty).to.equal(true);
  });

  it('ignores removal of something never added', () => {
    const index = new SelectorIndex<string>();
    index.add(parseSelector('a/b'), 'x');
    index.remove(parseSelector('a/*'), 'x');
    index.remove(parseSelector('a/b'), 'y');
    index.remove(parseSelector('q/**'), 'x');
    expect([...visited(index, 'a/b')]).to.deep.equal(['x']);
  });
});
