import { ONE, REST, type Selector } from './selector.js';

interface TrieNode<T> {
  readonly literal: Map<string, TrieNode<T>>;
  one: TrieNode<T> | undefined;
  /** Items whose selector ends here with `**` (needs one or more further segments). */
  rest: Set<T> | undefined;
  /** Items whose selector ends exactly here. */
  end: Set<T> | undefined;
}

function node<T>(): TrieNode<T> {
  return { literal: new Map(), one: undefined, rest: undefined, end: undefined };
}

/**
 * Finds the items whose selectors match a topic, touching only those. Exact selectors (most of
 * them: inboxes, per-object topics) sit in a hash map; wildcard selectors sit in a trie walked one
 * segment at a time, so a publish costs O(segments x wildcard branches), not O(subscribers).
 * Empty branches are pruned on removal, so the structure is bounded by the live subscriptions.
 */
export class SelectorIndex<T> {
  private readonly exact = new Map<string, Set<T>>();
  private readonly root: TrieNode<T> = node();

  add(selector: Selector, item: T): void {
    if (selector.exact) {
      let set = this.exact.get(selector.source);
      if (set === undefined) this.exact.set(selector.source, (set = new Set()));
      set.add(item);
      return;
    }
    let current = this.root;
    const last = selector.segments.length - 1;
    for (let i = 0; i <= last; i++) {
      const segment = selector.segments[i]!;
      if (segment === REST) {
        (current.rest ??= new Set()).add(item);
        return;
      }
      if (segment === ONE) {
        current = current.one ??= node();
      } else {
        let child = current.literal.get(segment);
        if (child === undefined) current.literal.set(segment, (child = node()));
        current = child;
      }
    }
    (current.end ??= new Set()).add(item);
  }

  remove(selector: Selector, item: T): void {
    if (selector.exact) {
      const set = this.exact.get(selector.source);
      if (set !== undefined && set.delete(item) && set.size === 0) this.exact.delete(selector.source);
      return;
    }
    this.removeFrom(this.root, selector.segments, 0, item);
  }

  /** Calls `visit` for each item with a selector matching `topic`; an item may be visited more than once. */
  forEachMatch(topic: string, visit: (item: T) => void): void {
    const set = this.exact.get(topic);
    if (set !== undefined) for (const item of set) visit(item);
    if (this.root.literal.size === 0 && this.root.one === undefined && this.root.rest === undefined) return;
    this.walk(this.root, topic.split('/'), 0, visit);
  }

  /** True when nothing is indexed (used by tests to show that removal leaves nothing behind). */
  get empty(): boolean {
    const r = this.root;
    return this.exact.size === 0 && r.literal.size === 0 && r.one === undefined && r.rest === undefined && r.end === undefined;
  }

  private walk(current: TrieNode<T>, segments: readonly string[], i: number, visit: (item: T) => void): void {
    if (i === segments.length) {
      if (current.end !== undefined) for (const item of current.end) visit(item);
      return;
    }
    if (current.rest !== undefined) for (const item of current.rest) visit(item);
    const child = current.literal.get(segments[i]!);
    if (child !== undefined) this.walk(child, segments, i + 1, visit);
    if (current.one !== undefined) this.walk(current.one, segments, i + 1, visit);
  }

  /** Removes `item` below `current`; returns true when `current` is left empty. */
  private removeFrom(current: TrieNode<T>, segments: readonly string[], i: number, item: T): boolean {
    const segment = segments[i];
    if (segment === undefined) {
      current.end?.delete(item);
      if (current.end?.size === 0) current.end = undefined;
    } else if (segment === REST) {
      current.rest?.delete(item);
      if (current.rest?.size === 0) current.rest = undefined;
    } else if (segment === ONE) {
      if (current.one !== undefined && this.removeFrom(current.one, segments, i + 1, item)) current.one = undefined;
    } else {
      const child = current.literal.get(segment);
      if (child !== undefined && this.removeFrom(child, segments, i + 1, item)) current.literal.delete(segment);
    }
    return current.literal.size === 0 && current.one === undefined && current.rest === undefined && current.end === undefined;
  }
}
