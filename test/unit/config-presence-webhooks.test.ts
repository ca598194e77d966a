import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { loadConfig } from '../../src/config.js';
import { configError } from '../helpers/config.js';

const secret = () => randomBytes(32).toString('base64');

describe('loadConfig: PRESENCE_FILE and WEBHOOKS_FILE', () => {
  it('has no presence and no webhooks by default, a 5 s leave delay, a 20 s lease and pages of 100', () => {
    const config = loadConfig({});
    expect(config.presence.policy.enabled).to.equal(false);
    expect(config.presence).to.include({ leaveDelayMs: 5000, leaseMs: 20_000, pageSize: 100 });
    expect(config.webhooks.targets).to.deep.equal([]);
  });

  describe('PRESENCE_FILE', () => {
    const env = { PRESENCE_FILE: '/etc/notify/presence.yaml' };

    it('reads YAML rules in order, readers defaulting to subscribers', () => {
      const config = loadConfig(env, () => 'topics:\n  - selector: documents/*\n  - selector: rooms/**\n    readers: presence-grant\n');
      const rules = config.presence.policy.rules.map((rule) => ({ selector: rule.selector.source, readers: rule.readers }));
      expect(rules).to.deep.equal([
        { selector: 'documents/*', readers: 'subscribers' },
        { selector: 'rooms/**', readers: 'presence-grant' },
      ]);
    });

    it('reads a .json file as JSON', () => {
      const config = loadConfig({ PRESENCE_FILE: 'p.json' }, () => JSON.stringify({ topics: [{ selector: 'documents/*' }] }));
      expect(config.presence.policy.ruleFor('documents/42')?.readers).to.equal('subscribers');
    });

    for (const [when, content, where] of [
      ['a selector is invalid', 'topics:\n  - selector: documents/**/x\n', 'topics[0].selector'],
      ['readers is not a known value', 'topics:\n  - selector: a\n  - selector: b\n    readers: everyone\n', 'topics[1].readers'],
      ['a rule has an unknown field', 'topics:\n  - selector: a\n    maxMembers: 5\n', 'topics[0].maxMembers'],
      ['there are no rules', 'topics: []\n', 'topics'],
      ['the file holds a list', '- selector: a\n', '(root)'],
    ] as const) {
      it(`names PRESENCE_FILE, the file and the entry when ${when}`, () => {
        const error = configError(env, () => content);
        expect(error.key).to.equal('PRESENCE_FILE');
        expect(error.message).to.include('/etc/notify/presence.yaml').and.include(where);
      });
    }

    it('names PRESENCE_FILE when the file is not YAML, repeats a key, or cannot be read', () => {
      expect(configError(env, () => 'topics: [').key).to.equal('PRESENCE_FILE');
      expect(configError(env, () => 'topics: []\ntopics: []\n').key).to.equal('PRESENCE_FILE');
      const unreadable = configError(env, () => {
        throw Object.assign(new Error('ENOENT: no such file'), { code: 'ENOENT' });
      });
      expect(unreadable.key).to.equal('PRESENCE_FILE');
      expect(unreadable.message).to.include('/etc/notify/presence.yaml');
    });

    it('refuses a leave delay or a lease out of range, naming it', () => {
      expect(configError({ PRESENCE_LEASE: '2' }, () => '').key).to.equal('PRESENCE_LEASE');
      expect(configError({ PRESENCE_LEAVE_DELAY: '301' }, () => '').key).to.equal('PRESENCE_LEAVE_DELAY');
      expect(configError({ PRESENCE_PAGE_SIZE: '0' }, () => '').key).to.equal('PRESENCE_PAGE_SIZE');
    });
  });

  describe('WEBHOOKS_FILE', () => {
    const env = { WEBHOOKS_FILE: '/etc/notify/webhooks.yaml' };
    const file = (url: string, extra = '') => `targets:\n  - url: ${url}\n    events: [member-added]\n    secret: ${secret()}\n${extra}`;

    it('reads the targets, defaults filled in', () => {
      const config = loadConfig(env, () => file('https://app.example.com/hooks'));
      expect(config.webhooks.targets).to.have.length(1);
      expect(config.webhooks.targets[0]!.url.href).to.equal('https://app.example.com/hooks');
      expect(config.webhooks.targets[0]!.events.has('member-added')).to.equal(true);
    });

    for (const [when, content, where] of [
      ['a URL is not http(s)', file('ftp://app.example.com/hooks'), 'targets[0].url'],
      ['a URL is a file', file('file:///etc/passwd'), 'targets[0].url'],
      ['a URL points at loopback without allowPrivateNetwork', file('http://127.0.0.1:9000/hooks'), 'targets[0].url'],
      ['a URL points at cloud metadata', file('http://169.254.169.254/latest'), 'targets[0].url'],
      ['a URL points at localhost', file('http://localhost:9000/hooks'), 'targets[0].url'],
      ['a URL is multicast even with allowPrivateNetwork', file('http://224.0.0.1/x', '    allowPrivateNetwork: true\n'), 'targets[0].url'],
    ] as const) {
      it(`refuses to start when ${when}, naming WEBHOOKS_FILE, the file and the entry`, () => {
        const error = configError(env, () => content);
        expect(error.key).to.equal('WEBHOOKS_FILE');
        expect(error.message).to.include('/etc/notify/webhooks.yaml').and.include(where);
      });
    }

    it('takes a loopback receiver when the target allows private networks', () => {
      const config = loadConfig(env, () => file('http://127.0.0.1:9000/hooks', '    allowPrivateNetwork: true\n'));
      expect(config.webhooks.targets[0]!.allowPrivateNetwork).to.equal(true);
    });

    it('names the second entry when only it is bad', () => {
      const two = `${file('https://a.example.com/h')}  - url: https://b.example.com/h\n    events: [nope]\n    secret: ${secret()}\n`;
      const error = configError(env, () => two);
      expect(error.key).to.equal('WEBHOOKS_FILE');
      expect(error.message).to.include('targets[1].events');
    });

    it('never puts the secret in the message', () => {
      const weak =
        'targets:\n  - url: https://a.example.com/h\n    events: [connected]\n    secret: correcthorsebatterystaplecorrecthorse\n';
      const error = configError(env, () => weak);
      expect(error.message).to.include('targets[0].secret').and.not.include('correcthorse');
    });
  });
});
