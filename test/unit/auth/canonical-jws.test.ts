import { expect } from 'chai';
import { isCanonicalCompactJws } from '../../../src/auth/token-service.js';

describe('isCanonicalCompactJws', () => {
  it('accepts three unpadded base64url segments that round-trip', () => {
    expect(isCanonicalCompactJws('eyJhIjoxfQ.eyJiIjoyfQ.AAAA')).to.equal(true);
  });

  it('refuses padding, the base64 alphabet, spare bits set, and other segment counts', () => {
    for (const token of [
      'eyJhIjoxfQ==.eyJiIjoyfQ.AAAA',
      'eyJhIjoxfQ.eyJiIjoyfQ.AA+/',
      'eyJhIjoxfQ.eyJiIjoyfQ.AB',
      'a.b',
      'a.b.c.d.e',
      'a..c',
    ]) {
      expect(isCanonicalCompactJws(token), token).to.equal(false);
    }
  });
});
