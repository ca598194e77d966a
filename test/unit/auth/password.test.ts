import { expect } from 'chai';
import { randomBytes, scryptSync } from 'node:crypto';
import { createPasswordVerifier, hashPassword, needsRehash, verifyPassword } from '../../../src/auth/password.js';
import { InvalidRequestError } from '../../../src/errors.js';
import { rejection } from '../../helpers/errors.js';

// 2^10 keeps each hash to a few milliseconds; the production default is 2^17.
const FAST = { logN: 10 };
const PHC = /^\$scrypt\$ln=10,r=8,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/;

const B64_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
/**
 * `text` (of length 4n + 2) with the 4 spare low bits of its last character set. Cutting a key to
 * 42 characters alone is not enough: one time in 16 those bits are 0, the text round-trips to 31
 * bytes, and scrypt's first 31 bytes are a prefix of its 32, so the hash verifies.
 */
const withSpareBits = (text: string) => text.slice(0, -1) + B64_ALPHABET[(B64_ALPHABET.indexOf(text.at(-1)!) & 0b110000) | 0b0001];

const b64 = (bytes: Buffer) => bytes.toString('base64').replace(/=+$/, '');

describe('hashPassword', () => {
  it('produces a PHC string with the requested cost, a 16-byte salt and a 32-byte key', async () => {
    expect(await hashPassword('correct horse', FAST)).to.match(PHC);
  });

  it('uses a fresh salt each time the same password is hashed', async () => {
    const [a, b] = await Promise.all([hashPassword('correct horse', FAST), hashPassword('correct horse', FAST)]);
    expect(a).not.to.equal(b);
  });

  it('rejects a password shorter than 8 characters with invalid_password', async () => {
    const error = await rejection(hashPassword('1234567', FAST));
    expect(error).to.be.instanceOf(InvalidRequestError);
    expect(error).to.have.property('code', 'invalid_password');
  });

  it('counts characters, not UTF-16 units, when the password has emoji', async () => {
    // 4 emoji are 8 UTF-16 units but only 4 characters.
    const error = await rejection(hashPassword('😀😀😀😀', FAST));
    expect(error).to.have.property('code', 'invalid_password');
  });

  it('accepts a password of exactly 8 characters and of exactly 1024 bytes', async () => {
    expect(await hashPassword('12345678', FAST)).to.match(PHC);
    expect(await hashPassword('x'.repeat(1024), FAST)).to.match(PHC);
  });

  it('rejects a password longer than 1024 bytes with invalid_password', async () => {
    const error = await rejection(hashPassword('x'.repeat(1025), FAST));
    expect(error).to.be.instanceOf(InvalidRequestError);
    expect(error).to.have.property('code', 'invalid_password');
  });

  it('measures the limit in UTF-8 bytes when the password has multi-byte characters', async () => {
    // 513 characters, 1026 bytes.
    const error = await rejection(hashPassword('é'.repeat(513), FAST));
    expect(error).to.have.property('code', 'invalid_password');
  });

  it('refuses a cost outside 2^10..2^20', async () => {
    expect(await rejection(hashPassword('correct horse', { logN: 9 }))).to.be.instanceOf(RangeError);
    expect(await rejection(hashPassword('correct horse', { logN: 21 }))).to.be.instanceOf(RangeError);
  });
});

describe('verifyPassword', () => {
  let stored: string;
  before(async () => {
    stored = await hashPassword('correct horse', FAST);
  });

  it('returns true when the password matches', async () => {
    expect(await verifyPassword('correct horse', stored)).to.equal(true);
  });

  it('returns false when the password is wrong', async () => {
    expect(await verifyPassword('correct horsE', stored)).to.equal(false);
    expect(await verifyPassword('', stored)).to.equal(false);
  });

  it('matches when the same text is typed in another Unicode normal form', async () => {
    const composed = await hashPassword('caf\u00e9-au-lait', FAST);
    expect(await verifyPassword('cafe\u0301-au-lait', composed)).to.equal(true);
  });

  it('returns false without throwing when the password is over 1024 bytes', async () => {
    expect(await verifyPassword('x'.repeat(1025), stored)).to.equal(false);
  });

  it('returns false without throwing when the stored hash is malformed', async () => {
    const [, , params, salt, key] = stored.split('$');
    const malformed = [
      '',
      'not a hash',
      '$scrypt$',
      `$argon2id$${params}$${salt}$${key}`,
      `$scrypt$${params}$${salt}`,
      `$scrypt$${params}$${salt}$${key}$extra`,
      `$scrypt$ln=10,r=8$${salt}$${key}`,
      `$scrypt$ln=10,r=8,p=1,x=1$${salt}$${key}`,
      `$scrypt$ln=0,r=8,p=1$${salt}$${key}`,
      `$scrypt$ln=10,r=0,p=1$${salt}$${key}`,
      `$scrypt$ln=10,r=8,p=1$${salt}$${withSpareBits(key!.slice(0, -1))}`, // 42 characters with spare bits set do not round-trip
      `$scrypt$ln=10,r=8,p=1$${salt}$${key}=`,
      `$scrypt$ln=10,r=8,p=1$${salt!.replace(/./, '-')}$${key}`,
      `$scrypt$ln=10,r=8,p=1$$${key}`,
      ` ${stored}`,
      `${stored}\n`,
    ];
    for (const phc of malformed) {
      expect(await verifyPassword('correct horse', phc), phc).to.equal(false);
    }
    expect(await verifyPassword('correct horse', undefined as unknown as string)).to.equal(false);
    expect(await verifyPassword(undefined as unknown as string, stored)).to.equal(false);
  });

  it('returns false without running scrypt when the stored parameters exceed the bounds', async () => {
    const [, , , salt, key] = stored.split('$');
    for (const params of ['ln=21,r=8,p=1', 'ln=10,r=17,p=1', 'ln=10,r=8,p=17', 'ln=20,r=16,p=1']) {
      const started = performance.now();
      expect(await verifyPassword('correct horse', `$scrypt$${params}$${salt}$${key}`), params).to.equal(false);
      // ln=20,r=16 would need 2 GiB and seconds of CPU; a refusal takes no time.
      expect(performance.now() - started, params).to.be.below(500);
    }
  });

  it('uses the parameters, salt length and key length stored in the hash', async () => {
    const salt = randomBytes(8);
    const key = scryptSync('correct horse', salt, 24, { N: 2 ** 11, r: 4, p: 2 });
    const phc = `$scrypt$ln=11,r=4,p=2$${b64(salt)}$${b64(key)}`;
    expect(await verifyPassword('correct horse', phc)).to.equal(true);
    expect(await verifyPassword('correct horse', phc.replace('r=4', 'r=5'))).to.equal(false);
    expect(await verifyPassword('correct horse', phc.replace('ln=11', 'ln=12'))).to.equal(false);
  });

  it('verifies a default-cost (2^17) hash when maxmem must exceed Node’s 32 MiB default', async function () {
    this.timeout(20_000);
    const salt = randomBytes(16);
    const key = scryptSync('correct horse', salt, 32, { N: 2 ** 17, r: 8, p: 1, maxmem: 256 * 1024 * 1024 });
    expect(await verifyPassword('correct horse', `$scrypt$ln=17,r=8,p=1$${b64(salt)}$${b64(key)}`)).to.equal(true);
  });
});

describe('needsRehash', () => {
  it('is false when the hash uses the given cost and true when it uses another', async () => {
    const stored = await hashPassword('correct horse', FAST);
    expect(needsRehash(stored, 10)).to.equal(false);
    expect(needsRehash(stored, 12)).to.equal(true);
    expect(needsRehash('garbage', 10)).to.equal(true);
  });
});

describe('createPasswordVerifier', () => {
  it('hashes with its cost and verifies what it hashed', async () => {
    const verifier = createPasswordVerifier(FAST);
    const stored = await verifier.hash('correct horse');
    expect(stored).to.match(PHC);
    expect(await verifier.verify('correct horse', stored)).to.equal(true);
    expect(await verifier.verify('wrong horse', stored)).to.equal(false);
    expect(verifier.needsRehash(stored)).to.equal(false);
  });

  it('still verifies hashes made with an older cost after the cost is raised', async () => {
    const old = await hashPassword('correct horse', FAST);
    const verifier = createPasswordVerifier({ logN: 11 });
    expect(await verifier.verify('correct horse', old)).to.equal(true);
    expect(verifier.needsRehash(old)).to.equal(true);
  });

  it('returns false when there is no stored hash (unknown account)', async () => {
    const verifier = createPasswordVerifier(FAST);
    expect(await verifier.verify('correct horse', undefined)).to.equal(false);
    expect(await verifier.verify('', undefined)).to.equal(false);
  });

  it('spends about as long on an unknown account as on a wrong password', async () => {
    // 2^14 makes one scrypt run take tens of milliseconds, far above the noise of skipping it.
    const verifier = createPasswordVerifier({ logN: 14 });
    const stored = await verifier.hash('correct horse');
    const time = async (phc: string | undefined) => {
      const started = performance.now();
      await verifier.verify('wrong horse', phc);
      return performance.now() - started;
    };
    const known = Math.min(await time(stored), await time(stored));
    const unknown = Math.min(await time(undefined), await time(undefined));
    expect(unknown).to.be.above(known * 0.3);
  });

  it('refuses to build with a cost outside 2^10..2^20', () => {
    expect(() => createPasswordVerifier({ logN: 5 })).to.throw(RangeError);
  });
});
