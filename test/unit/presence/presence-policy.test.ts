import { expect } from 'chai';
import { PresenceConfigError, PresencePolicy } from '../../../src/presence/presence-policy.js';
import { parseSelector } from '../../../src/topics/selector.js';
import { errorOf } from '../../helpers/errors.js';

const policy = PresencePolicy.parse({
  topics: [{ selector: 'rooms/secret/*', readers: 'presence-grant' }, { selector: 'rooms/*' }, { selector: 'documents/*' }],
});
const grants = (subscribe: string[], presence: string[] = []) => ({
  subscribe: subscribe.map(parseSelector),
  presence: presence.map(parseSelector),
});

describe('PresencePolicy', () => {
  it('lets the first rule that matches a topic decide', () => {
    expect(policy.ruleFor('rooms/secret/1')?.readers).to.equal('presence-grant');
    expect(policy.ruleFor('rooms/lobby')?.readers).to.equal('subscribers');
    expect(policy.ruleFor('news/today')).to.equal(undefined);
    expect(policy.ruleFor('documents/42/comments')).to.equal(undefined);
  });

  describe('access', () => {
    it('allows subscribers of a subscribers topic, and holders of a presence grant', () => {
      expect(policy.access(grants(['documents/*']), 'documents/42')).to.equal('allowed');
      expect(policy.access(grants([], ['documents/**']), 'documents/42')).to.equal('allowed');
    });

    it('forbids a topic outside every grant, whether or not it carries presence', () => {
      expect(policy.access(grants(['documents/1']), 'documents/2')).to.equal('forbidden');
      expect(policy.access(grants(['documents/1']), 'news/today')).to.equal('forbidden');
    });

    it('forbids mere subscribers of a presence-grant topic', () => {
      expect(policy.access(grants(['rooms/**']), 'rooms/secret/1')).to.equal('forbidden');
      expect(policy.access(grants([], ['rooms/secret/*']), 'rooms/secret/1')).to.equal('allowed');
    });

    it('says not_presence for a topic the caller may see that carries no presence', () => {
      expect(policy.access(grants(['news/*']), 'news/today')).to.equal('not_presence');
    });
  });

  it('makes members of exact presence selectors only', () => {
    const selectors = ['documents/42', 'documents/*', 'news/today', 'rooms/lobby', '**'].map(parseSelector);
    expect(policy.memberTopics(selectors)).to.deep.equal(['documents/42', 'rooms/lobby']);
    expect(PresencePolicy.NONE.memberTopics(selectors)).to.deep.equal([]);
  });

  it('names the entry and field of a bad rule', () => {
    const bad = errorOf(() => PresencePolicy.parse({ topics: [{ selector: 'a' }, { selector: 'a/**/b' }] }));
    expect(bad).to.be.instanceOf(PresenceConfigError);
    expect((bad as PresenceConfigError).path).to.equal('topics[1].selector');
    expect((errorOf(() => PresencePolicy.parse({ topics: [{ selector: 'a', extra: 1 }] })) as PresenceConfigError).path).to.equal(
      'topics[0].extra',
    );
    expect((errorOf(() => PresencePolicy.parse({ topics: [{ selector: 'a' }], rules: [] })) as PresenceConfigError).path).to.equal('rules');
  });
});
