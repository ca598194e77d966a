import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { checkHmacSecret, HMAC_SECRET_HINT, type HmacSecretProblem } from '../../../src/auth/hmac-secret.js';

function refusal(value: string): HmacSecretProblem {
  const verdict = checkHmacSecret(value);
  if (verdict.ok) throw new Error(`expected a refusal for ${value}`);
  // Every refusal tells the operator how to make a good one.
  expect(verdict.message).to.include(HMAC_SECRET_HINT);
  return verdict.code;
}

describe('checkHmacSecret', () => {
  it('accepts 32 random bytes as `openssl rand -hex 32`, `-base64 32` and base64url, padded or not, and returns the bytes', () => {
    for (let i = 0; i < 300; i++) {
      const bytes = randomBytes(32);
      for (const encoded of [
        bytes.toString('hex'),
        bytes.toString('base64'),
        bytes.toString('base64url'),
        bytes.toString('base64').replace(/=+$/, ''),
      ]) {
        const verdict = checkHmacSecret(encoded);
        expect(verdict.ok, encoded).to.equal(true);
        if (verdict.ok) expect(Buffer.from(verdict.bytes)).to.deep.equal(bytes);
      }
    }
  });

  it('accepts longer random secrets (64 bytes) and upper-case hex', () => {
    expect(checkHmacSecret(randomBytes(64).toString('base64url')).ok).to.equal(true);
    expect(checkHmacSecret(randomBytes(32).toString('hex').toUpperCase()).ok).to.equal(true);
  });

  const refused: Array<[string, string, HmacSecretProblem]> = [
    ['a passphrase with blanks (the issue)', 'my notify server jwt secret key for production 2024!', 'not_an_encoding'],
    ['a secret with a trailing newline', `${randomBytes(32).toString('base64')}\n`, 'not_an_encoding'],
    ['base64 with padding in the middle', `${randomBytes(16).toString('base64')}${randomBytes(16).toString('base64')}`, 'not_an_encoding'],
    ['31 random bytes', randomBytes(31).toString('hex'), 'too_short'],
    ['a short word', 'secret', 'too_short'],
    [
      'a passphrase put through base64',
      Buffer.from('my notify server jwt secret key for production 2024!').toString('base64'),
      'encodes_text',
    ],
    ['a passphrase put through hex', Buffer.from('correct horse battery staple, notify production').toString('hex'), 'encodes_text'],
    [
      'a UTF-8 passphrase put through base64url',
      Buffer.from('mot de passe très secret pour le serveur notify').toString('base64url'),
      'encodes_text',
    ],
    ['zeros', `${'A'.repeat(43)}=`, 'not_random'],
    ['a repeated pair of bytes', 'ab01'.repeat(16), 'not_random'],
    ['a long lowercase phrase that decodes as base64url', 'thequickbrownfoxjumpsoverthelazydogagainandagain', 'not_random'],
    ['words joined by hyphens', 'notify-server-jwt-secret-for-production-2024-x', 'not_random'],
    ['hex without digits', 'deadbeefcafebabe'.repeat(4), 'not_random'],
    ['CamelCase words', 'MyNotifyServerJwtSecretKeyForProduction2024', 'reads_as_words'],
    ['words run together', 'CorrectHorseBatteryStapleNotifyProductionKey', 'reads_as_words'],
    ['Title_Case words with underscores', 'Notify_Server_Jwt_Secret_Key_For_Production_2024', 'reads_as_words'],
    ['l33t words', 'N0t1fyS3cr3tK3yF0rPr0duct10nS3rv3r2024xyzab', 'reads_as_words'],
    ['a keyboard walk and common passwords', 'QwertyAsdfghZxcvbnPasswordLetMeIn1234567890', 'reads_as_words'],
  ];
  for (const [what, value, code] of refused) {
    it(`refuses ${what} (${code})`, () => {
      expect(refusal(value)).to.equal(code);
    });
  }
});
