import { expect } from 'chai';
import { z } from 'zod';
import { InvalidRequestError } from '../../../src/errors.js';
import { parseWith } from '../../../src/http/request-body.js';
import { parseTopic } from '../../../src/topics/topic.js';
import { errorOf } from '../../helpers/errors.js';

/** What zod's own English messages look like; none of it may reach a caller. */
const ZOD_WORDING = /Invalid input|Invalid option|expected .*received|nonoptional|Too (small|big)|>=|<=|must match pattern/;

describe("parseWith: our own messages, never zod's", () => {
  const schema = z
    .object({
      topics: z.array(z.string()).min(1).max(2),
      type: z.string().min(1).max(8).optional(),
      data: z.unknown(),
      key: z
        .string()
        .regex(/^k-[a-z]+$/)
        .optional(),
      cookie: z.union([z.boolean(), z.enum(['true', 'false'])]).optional(),
      grant_type: z.literal('refresh_token').optional(),
      count: z.number().int().min(1).optional(),
    })
    .strict();

  const cases: Array<[body: unknown, field: string | undefined, says: RegExp]> = [
    [{ data: 1 }, 'topics', /^topics is required\.$/],
    [{ topics: 'public/news', data: 1 }, 'topics', /^topics must be an array\.$/],
    [{ topics: ['a'] }, 'data', /^data is required\.$/],
    [{ topics: [], data: 1 }, 'topics', /^topics must hold at least 1 item\.$/],
    [{ topics: ['a', 'b', 'c'], data: 1 }, 'topics', /^topics must hold at most 2 items\.$/],
    [{ topics: [1], data: 1 }, 'topics.0', /^topics\[0\] must be a string\.$/],
    [{ topics: ['a'], data: 1, type: '' }, 'type', /^type must not be empty\.$/],
    [{ topics: ['a'], data: 1, type: 'x'.repeat(9) }, 'type', /^type must be at most 8 characters\.$/],
    [{ topics: ['a'], data: 1, key: 'nope' }, 'key', /^key is not in the allowed form\.$/],
    [{ topics: ['a'], data: 1, cookie: 5 }, 'cookie', /^cookie is not one of the accepted forms\.$/],
    [{ topics: ['a'], data: 1, grant_type: 'password' }, 'grant_type', /^grant_type must be "refresh_token"\.$/],
    [{ topics: ['a'], data: 1, count: 1.5 }, 'count', /^count must be a whole number\.$/],
    [{ topics: ['a'], data: 1, count: 0 }, 'count', /^count must be at least 1\.$/],
    [{ topics: ['a'], data: 1, extra: true }, undefined, /^Unknown field: extra\.$/],
    [[], undefined, /^The body must be an object\.$/],
  ];

  for (const [body, field, says] of cases) {
    it(`names the field in plain words for ${JSON.stringify(body)}`, () => {
      const error = errorOf(() => parseWith(schema, body));
      expect(error).to.be.instanceOf(InvalidRequestError);
      expect(error).to.have.property('code', 'invalid_request');
      expect((error as InvalidRequestError).details?.field).to.equal(field);
      expect((error as Error).message).not.to.match(ZOD_WORDING);
      expect((error as Error).message).to.match(says);
    });
  }
});

describe('parseTopic: a wildcard in a published topic', () => {
  it('says that wildcards cannot be published to (code invalid_topic)', () => {
    for (const topic of ['public/*', 'public/**', '**']) {
      const error = errorOf(() => parseTopic(topic));
      expect(error).to.have.property('code', 'invalid_topic');
      expect((error as Error).message).to.match(/wildcards cannot be published to/);
    }
  });
});
