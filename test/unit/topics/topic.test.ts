import { expect } from 'chai';
import { InvalidRequestError } from '../../../src/errors.js';
import { parseTopic, TOPIC_LIMITS } from '../../../src/topics/topic.js';
import { errorOf } from '../../helpers/errors.js';

function expectInvalid(input: unknown): void {
  const error = errorOf(() => parseTopic(input));
  expect(error, JSON.stringify(input)).to.be.instanceOf(InvalidRequestError);
  expect(error, JSON.stringify(input)).to.have.property('code', 'invalid_topic');
  expect(error).to.have.property('status', 400);
}

/** A topic of exactly `length` characters made of 64-character segments and a shorter last one. */
function topicOfLength(length: number): string {
  const segments: string[] = [];
  let left = length;
  while (left > 0) {
    const take = Math.min(TOPIC_LIMITS.maxSegmentLength, left - (segments.length > 0 ? 1 : 0));
    segments.push('x'.repeat(take));
    left -= take + (segments.length > 1 ? 1 : 0);
  }
  const topic = segments.join('/');
  if (topic.length !== length) throw new Error(`helper built ${topic.length}, wanted ${length}`);
  return topic;
}

describe('parseTopic', () => {
  it('returns the topic unchanged when it is valid', () => {
    for (const topic of ['a', 'users/alice/inbox', 'A-Z.a_z~0-9', '.hidden', 'a.', 'a..b', 'x/-/_/~']) {
      expect(parseTopic(topic)).to.equal(topic);
    }
  });

  it('rejects an empty string or a non-string with invalid_topic', () => {
    for (const input of ['', undefined, null, 42, ['a'], { topic: 'a' }]) expectInvalid(input);
  });

  it('rejects empty segments when the topic has a double, leading or trailing slash', () => {
    for (const input of ['a//b', '/a', 'a/', '/']) expectInvalid(input);
  });

  it('rejects segments made only of dots when they are ., .. or ...', () => {
    for (const input of ['.', '..', '...', 'a/./b', 'a/../b', 'a/...', '../etc']) expectInvalid(input);
  });

  it('rejects characters outside the unreserved set when they are non-ASCII, % , spaces or wildcards', () => {
    for (const input of ['café', 'a/ü', 'a%2Fb', 'a b', ' a', 'a\tb', 'a\nb', 'a*', '*', '**', 'a/+', 'a?b', 'a#b', 'a:b', 'аdmin']) {
      expectInvalid(input);
    }
  });

  it('accepts 256 characters and rejects 257 when the topic is otherwise valid', () => {
    expect(TOPIC_LIMITS.maxLength).to.equal(256);
    const ok = topicOfLength(256);
    expect(parseTopic(ok)).to.equal(ok);
    expectInvalid(topicOfLength(257));
  });

  it('accepts 16 segments and rejects 17', () => {
    const sixteen = Array.from({ length: 16 }, () => 'a').join('/');
    expect(parseTopic(sixteen)).to.equal(sixteen);
    expectInvalid(`${sixteen}/a`);
  });

  it('accepts a 64-character segment and rejects a 65-character one', () => {
    expect(parseTopic(`a/${'s'.repeat(64)}`)).to.equal(`a/${'s'.repeat(64)}`);
    expectInvalid(`a/${'s'.repeat(65)}`);
    expectInvalid('s'.repeat(65));
  });
});
