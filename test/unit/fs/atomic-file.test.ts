import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { writeFileAtomic } from '../../../src/fs/atomic-file.js';
import { rejection } from '../../helpers/errors.js';

describe('writeFileAtomic', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'notify-atomic-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('creates a missing directory with mode 0700 and the file with mode 0600 by default', async () => {
    const file = path.join(dir, 'nested', 'secret.pem');
    await writeFileAtomic(file, 'key');
    expect(readFileSync(file, 'utf8')).to.equal('key');
    expect(statSync(file).mode & 0o777).to.equal(0o600);
    expect(statSync(path.dirname(file)).mode & 0o777).to.equal(0o700);
  });

  it('gives the file the mode asked for even when the umask would take bits away', async () => {
    const file = path.join(dir, 'shared.json');
    const previous = process.umask(0o077);
    try {
      await writeFileAtomic(file, '{}', 0o640);
    } finally {
      process.umask(previous);
    }
    expect(statSync(file).mode & 0o777).to.equal(0o640);
  });

  it('replaces an existing file whole, leaves no temporary file, and returns the stats of the new file', async () => {
    const file = path.join(dir, 'users.json');
    writeFileSync(file, 'old contents, longer than the new ones');
    const before = statSync(file);
    const stats = await writeFileAtomic(file, new TextEncoder().encode('new'));
    const after = statSync(file);
    expect(readFileSync(file, 'utf8')).to.equal('new');
    expect(readdirSync(dir)).to.deep.equal(['users.json']);
    // Rename-over gives a new inode; the returned stats describe the file now in place.
    expect(after.ino).to.not.equal(before.ino);
    expect([stats.ino, stats.size, stats.mtimeMs]).to.deep.equal([after.ino, after.size, after.mtimeMs]);
  });

  it('removes the temporary file and leaves the target as it was when the rename fails', async () => {
    const target = path.join(dir, 'taken');
    mkdirSync(target);
    writeFileSync(path.join(target, 'inside'), 'x');
    const error = await rejection(writeFileAtomic(target, 'data'));
    expect(error).to.have.property('code').that.is.oneOf(['EISDIR', 'ENOTEMPTY', 'EEXIST']);
    expect(readdirSync(dir)).to.deep.equal(['taken']);
    expect(readdirSync(target)).to.deep.equal(['inside']);
  });
});
