import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { decodeWebhookSecret, InvalidWebhookSecretError, webhookSigningKey } from '../../../src/webhooks/webhook-secret.js';
import { errorOf } from '../../helpers/errors.js';
import { mulberry32 } from '../../helpers/random.js';

function reasonOf(text: string): string {
  const error = errorOf(() => decodeWebhookSecret(text));
  expect(error).to.be.instanceOf(InvalidWebhookSecretError);
  return (error as InvalidWebhookSecretError).reason;
}

/** Passphrases people put where a random secret belongs; each long enough to decode to 32 bytes. */
const PASSPHRASES = [
  'CorrectHorseBatteryStapleIsMySecretPassword',
  'my-company-webhook-secret-for-production-2026',
  'ThisIsAVeryLongAndSecureWebhookSecretKey2026',
  'notify_webhooks_shared_secret_value_for_staging',
  'thequickbrownfoxjumpsoverthelazydogthequickbrownfox',
  'MYWEBHOOKSECRETFORPRODUCTIONSERVERNUMBERONE',
  'our-shared-webhook-signing-key-do-not-share',
  'PasswordPasswordPasswordPassword123456789012',
  'kubernetesclusterwebhookforacmecorporationeu1',
];

describe('decodeWebhookSecret', () => {
  it('accepts what `openssl rand -base64 32` and `-hex 32` print, base64url, and the whsec_ form', () => {
    const bytes = randomBytes(32);
    for (const text of [
      bytes.toString('base64'),
      bytes.toString('hex'),
      bytes.toString('base64url'),
      `whsec_${bytes.toString('base64')}`,
    ]) {
      expect(Buffer.from(decodeWebhookSecret(text)).equals(bytes), text).to.equal(true);
    }
  });

  it('refuses text that is no encoding, with reason secret_encoding and the openssl hint', () => {
    expect(reasonOf('correct horse battery staple, my webhook secret!')).to.equal('secret_encoding');
    expect(reasonOf(`${randomBytes(32).toString('base64')}!`)).to.equal('secret_encoding');
    expect((errorOf(() => decodeWebhookSecret('not a secret')) as Error).message).to.contain('openssl rand -base64 32');
  });

  it('refuses base64 with bits an encoder never writes (Buffer.from alone would accept it)', () => {
    const canonical = randomBytes(32).toString('base64url'); // 43 characters, the last holds 2 spare bits
    const last = canonical.at(-1)!;
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const changed = alphabet[(alphabet.indexOf(last) & ~3) | ((alphabet.indexOf(last) & 3) ^ 1)]!;
    expect(reasonOf(canonical.slice(0, -1) + changed)).to.equal('secret_encoding');
  });

  it('refuses fewer than 32 bytes', () => {
    expect(reasonOf(randomBytes(31).toString('base64'))).to.equal('secret_too_short');
    expect(reasonOf(randomBytes(16).toString('hex'))).to.equal('secret_too_short');
  });

  it('refuses repeated byte patterns', () => {
    expect(reasonOf('ab'.repeat(32))).to.equal('secret_not_random');
    expect(reasonOf(Buffer.alloc(48, 7).toString('base64'))).to.equal('secret_not_random');
  });

  it('refuses passphrases made of base64 characters', () => {
    for (const text of PASSPHRASES) {
      // Some are refused earlier, as non-canonical base64 (their last letter has spare bits set).
      expect(reasonOf(text), text).to.be.oneOf(['secret_not_random', 'secret_encoding']);
    }
  });

  it('refuses hex that is only digits or only letters', () => {
    expect(reasonOf('3141592653589793238462643383279502884197169399375105820974944592')).to.equal('secret_not_random');
    expect(reasonOf('abcdefabcdefedcbafedcbaeeffaabbccddeeffabcdefabcdefedcbafedcbaee')).to.equal('secret_not_random');
  });

  it('accepts every one of 2,000 seeded random secrets of 32 and 48 bytes in each encoding (6,000,000 measured by scripts/hmac-secret-false-refusals.ts)', () => {
    const random = mulberry32(15);
    let refused = 0;
    for (let i = 0; i < 2_000; i++) {
      const bytes = Buffer.from(Array.from({ length: i % 2 === 0 ? 32 : 48 }, () => Math.floor(random() * 256)));
      for (const text of [bytes.toString('base64'), bytes.toString('base64url'), bytes.toString('hex')]) {
        try {
          decodeWebhookSecret(text);
        } catch {
          refused++;
        }
      }
    }
    expect(refused).to.equal(0);
  });

  it('gives a key object that does not print its bytes', () => {
    const text = randomBytes(32).toString('hex');
    const key = webhookSigningKey(text);
    expect(JSON.stringify(key)).not.to.contain(text.slice(0, 16));
    expect(key.export().toString('hex')).to.equal(text);
  });
});
