import { Writable } from 'node:stream';
import { expect } from 'chai';
import { createLogger, resolveLogFormat } from '../../src/logger.js';
import { startupBanner } from '../../src/startup-banner.js';

const facts = {
  url: 'http://127.0.0.1:3000',
  usersFile: '/srv/notify/data/users.json',
  dataDir: '/srv/notify/data',
  users: 0,
  clients: 0,
  alg: 'EdDSA',
  backend: 'embedded (SQLite, /var/lib/notify/notify.db)',
};

describe('the start-up banner', () => {
  it('names the URL, /docs, the demo page and the user file, and on a first run the command that adds an account there', () => {
    const banner = startupBanner(facts);
    expect(banner).to.include('http://127.0.0.1:3000/docs');
    expect(banner).to.match(/demo page\s+http:\/\/127\.0\.0\.1:3000\//);
    expect(banner).to.include('/srv/notify/data/users.json (0 users, 0 service clients)');
    expect(banner).to.include('`notify users add NAME --role user --data-dir /srv/notify/data`');
  });

  it('points the command at the configuration file, or at a USERS_FILE outside the data directory', () => {
    expect(startupBanner({ ...facts, configFile: '/etc/notify.yaml' })).to.include('--config /etc/notify.yaml`');
    expect(startupBanner({ ...facts, usersFile: '/elsewhere/u.json' })).to.include(
      '`USERS_FILE=/elsewhere/u.json notify users add NAME --role user`',
    );
  });

  it('says nothing about adding accounts once there is one, and uses PUBLIC_ORIGIN for the links', () => {
    const banner = startupBanner({ ...facts, users: 1, publicOrigin: 'https://notify.example' });
    expect(banner).to.not.include('No accounts yet');
    expect(banner).to.include('https://notify.example/docs');
    expect(banner).to.include('(1 user, 0 service clients)');
  });
});

describe('LOG_FORMAT', () => {
  it('auto means pretty on a terminal and JSON elsewhere', () => {
    expect(resolveLogFormat('auto', true)).to.equal('pretty');
    expect(resolveLogFormat('auto', false)).to.equal('json');
    expect(resolveLogFormat('json', true)).to.equal('json');
    expect(resolveLogFormat('pretty', false)).to.equal('pretty');
  });

  it('writes one JSON object a line, or a readable line, still redacting what must not be logged', () => {
    const lines = (format: 'json' | 'pretty') => {
      let text = '';
      const sink = new Writable({
        write(chunk: Buffer, _encoding, done) {
          text += chunk.toString();
          done();
        },
      });
      createLogger('info', sink, format).info({ token: 'eyJ.secret.token', port: 3000 }, 'listening');
      return text;
    };
    const json = JSON.parse(lines('json').trim()) as Record<string, unknown>;
    expect(json).to.include({ msg: 'listening', port: 3000, token: '[redacted]' });
    const pretty = lines('pretty');
    expect(pretty).to.match(/INFO.*listening/);
    expect(pretty).to.not.include('eyJ.secret.token');
    expect(() => JSON.parse(pretty)).to.throw();
  });
});
