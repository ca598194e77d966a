import { readFileSync } from 'node:fs';
import SwaggerParser from '@apidevtools/swagger-parser';
import { expect } from 'chai';
import { parse as parseYaml } from 'yaml';
import { ERROR_CODES } from '../src/error-codes.js';
import { CONTROL_EVENT_TYPES } from '../src/streams/control-events.js';
import { parseSelector } from '../src/topics/selector.js';
import { parseTopic } from '../src/topics/topic.js';
import {
  SPEC_PATH,
  expectMatchesSchema,
  expectResponseMatchesSpec,
  expectSseEventMatchesSpec,
  isJsonMediaType,
  openApiSpec,
  specOperation,
  specOperations,
  type Json,
} from './helpers/openapi.js';

/** Routes that are not part of the API proper: they need no error answers. */
const META_PATHS = new Set(['/healthz', '/readyz', '/openapi.yaml', '/docs', '/']);
const CONTROL_EVENTS: readonly string[] = CONTROL_EVENT_TYPES;

/** The raw document, `$ref`s untouched. */
const raw = parseYaml(readFileSync(SPEC_PATH, 'utf8')) as Json;

function walk(node: unknown, visit: (value: Json, path: string) => void, path = '#'): void {
  if (node === null || typeof node !== 'object') return;
  visit(node, path);
  for (const [key, value] of Object.entries(node)) walk(value, visit, `${path}/${key}`);
}

function resolvePointer(document: unknown, ref: string): unknown {
  let node: unknown = document;
  for (const token of ref.slice(2).split('/')) {
    const key = decodeURIComponent(token).replace(/~1/g, '/').replace(/~0/g, '~');
    if (node === null || typeof node !== 'object' || !Object.hasOwn(node, key)) return undefined;
    node = (node as Json)[key];
  }
  return node;
}

function fails(run: () => void): string {
  try {
    run();
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error('expected the check to fail, but it passed');
}

describe('openapi.yaml', () => {
  describe('document', () => {
    it('is a valid OpenAPI 3.1 description', async () => {
      const api = (await SwaggerParser.validate(SPEC_PATH)) as Json;
      expect(api.openapi).to.equal('3.1.0');
    });

    it('resolves every $ref to a local definition', () => {
      const refs: string[] = [];
      walk(raw, (node) => {
        if (typeof node.$ref === 'string') refs.push(node.$ref);
      });
      expect(refs.length).to.be.greaterThan(20);
      const broken = refs.filter((ref) => !ref.startsWith('#/') || resolvePointer(raw, ref) === undefined);
      expect(broken, 'unresolved $ref').to.deep.equal([]);
    });

    it('defines every security scheme that an operation names', () => {
      const schemes = Object.keys(raw.components.securitySchemes);
      expect(schemes).to.include.members(['bearerAuth', 'cookieAuth', 'clientBasic']);
      const named = new Set<string>();
      for (const requirement of raw.security ?? []) Object.keys(requirement).forEach((name) => named.add(name));
      for (const { method, path } of specOperations()) {
        for (const requirement of specOperation(method, path).security ?? []) {
          Object.keys(requirement).forEach((name) => named.add(name));
        }
      }
      expect([...named].filter((name) => !schemes.includes(name))).to.deep.equal([]);
    });

    it('has the reusable schemas the clients rely on', () => {
      expect(Object.keys(raw.components.schemas)).to.include.members([
        'Error',
        'TokenResponse',
        'Topic',
        'Selector',
        'EventType',
        'EventId',
        'PublishRequest',
        'PublishResponse',
        'ConnectedEventData',
        'ResetEventData',
        'TokenExpiringEventData',
        'TokenRenewedEventData',
        'ClosedEventData',
        'PresenceSnapshotEventData',
        'PresenceJoinEventData',
        'PresenceLeaveEventData',
        'WebhookBatch',
        'WebhookEvent',
      ]);
    });
  });

  describe('operations', () => {
    let operations: Array<{ method: string; path: string }> = [];
    before(() => {
      operations = specOperations();
    });

    it('lists every route of the server', () => {
      const listed = operations.map(({ method, path }) => `${method.toUpperCase()} ${path}`);
      expect(listed).to.have.members([
        'POST /auth/login',
        'POST /auth/token',
        'POST /auth/revoke',
        'POST /auth/logout',
        'POST /auth/ticket',
        'GET /admin/accounts',
        'POST /admin/accounts',
        'DELETE /admin/accounts/{name}',
        'PUT /admin/accounts/{name}/roles',
        'POST /admin/revocations',
        'GET /.well-known/jwks.json',
        'POST /events',
        'GET /events',
        'POST /events/connections/{connectionId}/token',
        'GET /presence',
        'GET /presence/topics',
        'GET /presence/connections',
        'GET /healthz',
        'GET /readyz',
        'GET /openapi.yaml',
        'GET /docs',
        'GET /',
        'GET /app/{file}',
        'GET /metrics',
      ]);
    });

    it('gives every operation a unique operationId and a summary', () => {
      const ids = operations.map(({ method, path }) => specOperation(method, path).operationId);
      for (const [index, { method, path }] of operations.entries()) {
        expect(ids[index], `${method} ${path} operationId`)
          .to.be.a('string')
          .and.match(/^[a-z][A-Za-z0-9]*$/);
        expect(specOperation(method, path).summary, `${method} ${path} summary`).to.be.a('string').that.is.not.empty;
      }
      expect(new Set(ids).size).to.equal(ids.length);
    });

    it('documents at least one 4xx answer for every API operation', () => {
      const missing = operations
        .filter(({ path }) => !META_PATHS.has(path))
        .filter(({ method, path }) => !Object.keys(specOperation(method, path).responses).some((s) => /^4(\d\d|XX)$/.test(s)))
        .map(({ method, path }) => `${method} ${path}`);
      expect(missing).to.deep.equal([]);
    });

    it('uses the Error schema for every JSON error answer', () => {
      const errorSchema = openApiSpec().components.schemas.Error;
      for (const { method, path } of operations) {
        for (const [status, response] of Object.entries<Json>(specOperation(method, path).responses)) {
          if (!/^[45]/.test(status) && status !== 'default') continue;
          if (path === '/readyz') continue; // readiness answers its own { status, reason } body
          const schema = response.content?.['application/json']?.schema;
          expect(schema, `${method} ${path} ${status}`).to.equal(errorSchema);
        }
      }
    });

    it('declares every path template parameter', () => {
      for (const { method, path } of operations) {
        const names = [...path.matchAll(/\{([^}]+)\}/g)].map((match) => match[1]);
        const declared = (specOperation(method, path).parameters ?? [])
          .filter((parameter: Json) => parameter.in === 'path')
          .map((parameter: Json) => parameter.name);
        expect(declared, `${method} ${path}`).to.have.members(names);
      }
    });
  });

  describe('examples', () => {
    it('validate against their component schemas', () => {
      let count = 0;
      for (const [name, schema] of Object.entries<Json>(openApiSpec().components.schemas)) {
        for (const [index, example] of (schema.examples ?? []).entries()) {
          expectMatchesSchema(example, schema, `components.schemas.${name}.examples[${index}]`);
          count++;
        }
      }
      expect(count).to.be.greaterThan(20);
    });

    it('validate against the schemas of the media types, parameters and headers that use them', () => {
      let count = 0;
      const check = (value: unknown, schema: Json | undefined, where: string) => {
        if (schema === undefined) return;
        expectMatchesSchema(value, schema, where);
        count++;
      };
      const checkExamples = (holder: Json, schema: Json | undefined, where: string) => {
        if (holder.example !== undefined) check(holder.example, schema, `${where}.example`);
        for (const [name, example] of Object.entries<Json>(holder.examples ?? {})) {
          check(example.value, schema, `${where}.examples.${name}`);
        }
      };
      walk(openApiSpec(), (node, path) => {
        if (/\/content\/[^/]+$/.test(path)) {
          const mediaType = path.slice(path.lastIndexOf('/') + 1).replace(/~1/g, '/');
          if (isJsonMediaType(mediaType) || mediaType === 'application/x-www-form-urlencoded') {
            checkExamples(node, node.schema, path);
          }
        } else if (/\/(parameters\/\d+|headers\/[^/]+)$/.test(path) && node.schema !== undefined) {
          checkExamples(node, node.schema, path);
        }
      });
      expect(count).to.be.greaterThan(20);
    });
  });

  describe('topics and selectors', () => {
    const topic = () => openApiSpec().components.schemas.Topic as Json;
    const selector = () => openApiSpec().components.schemas.Selector as Json;
    const long = (n: number) => 'a'.repeat(n);
    const segments = (n: number) => Array.from({ length: n }, () => 'a').join('/');
    const agrees = (schema: Json, parse: (input: unknown) => unknown, input: string) => {
      let accepted = true;
      try {
        parse(input);
      } catch {
        accepted = false;
      }
      let valid = true;
      try {
        expectMatchesSchema(input, schema, JSON.stringify(input));
      } catch {
        valid = false;
      }
      expect(valid, `schema vs parser for ${JSON.stringify(input)}`).to.equal(accepted);
      return valid;
    };

    it('Topic agrees with the server about what a topic is', () => {
      const good = ['news', 'news/sport', 'users/alice/inbox', 'a.b_c~d-e', '.x/y.', long(64), segments(16)];
      const bad = [
        '',
        '/news',
        'news/',
        'a//b',
        '.',
        'a/../b',
        'a/.../b',
        'a/*',
        'a b',
        'é',
        long(65),
        segments(17),
        `${long(64)}/${long(64)}/${long(64)}/${long(64)}/b`,
      ];
      for (const input of good) expect(agrees(topic(), parseTopic, input), input).to.equal(true);
      for (const input of bad) expect(agrees(topic(), parseTopic, input), input).to.equal(false);
    });

    it('Selector agrees with the server about what a selector is', () => {
      const good = ['**', '*', 'users/alice/**', 'users/*/inbox', '*/*/**', 'news/sport', segments(16)];
      const bad = ['', 'a/**/b', '***', 'a*', 'a/**/**', '**/a', 'a//b', '..', 'a/./b', segments(17), long(65)];
      for (const input of good) expect(agrees(selector(), parseSelector, input), input).to.equal(true);
      for (const input of bad) expect(agrees(selector(), parseSelector, input), input).to.equal(false);
    });

    it('EventType refuses the control event names and bad characters', () => {
      const eventType = openApiSpec().components.schemas.EventType;
      for (const name of CONTROL_EVENTS) expect(() => expectMatchesSchema(name, eventType, name)).to.throw();
      for (const name of ['', 'a b', 'line\nbreak', long(65)]) expect(() => expectMatchesSchema(name, eventType, name)).to.throw();
      for (const name of ['message', 'message.created', 'a:b_c-d', long(64)]) expectMatchesSchema(name, eventType, name);
    });
  });

  describe('error codes', () => {
    const errorProperty = () => raw.components.schemas.Error.properties.error as Json;
    const moduleCodes = ERROR_CODES.map((entry) => entry.code as string);

    it('lists in the Error schema enum exactly the codes of src/error-codes.ts, both ways', () => {
      const specCodes = errorProperty().enum as string[];
      expect(specCodes, 'Error.error.enum').to.be.an('array');
      expect(new Set(specCodes).size, 'duplicates in openapi.yaml').to.equal(specCodes.length);
      expect(new Set(moduleCodes).size, 'duplicates in src/error-codes.ts').to.equal(moduleCodes.length);
      expect(
        specCodes.filter((code) => !moduleCodes.includes(code)),
        'in openapi.yaml but not in src/error-codes.ts',
      ).to.deep.equal([]);
      expect(
        moduleCodes.filter((code) => !specCodes.includes(code)),
        'in src/error-codes.ts but not in openapi.yaml',
      ).to.deep.equal([]);
      expect(errorProperty().pattern, 'a pattern would admit codes outside the list').to.equal(undefined);
    });

    it('gives each code the meaning src/error-codes.ts gives it, in the same order', () => {
      const described = [...String(errorProperty().description).matchAll(/^- `([a-z_]+)`: (.+)$/gm)].map((m) => `${m[1]}: ${m[2]}`);
      expect(described).to.deep.equal(ERROR_CODES.map((entry) => `${entry.code}: ${entry.meaning}`));
    });
  });

  describe('expectResponseMatchesSpec', () => {
    const published = { id: '1718000000000-0', topics: ['users/alice/inbox'], type: 'message' };
    const json = { 'content-type': 'application/json; charset=utf-8' };

    it('accepts a documented answer', () => {
      expectResponseMatchesSpec({ status: 201, headers: json, body: published }, 'POST', '/events');
      expectResponseMatchesSpec({ status: 200, headers: json, body: { ...published, duplicate: true } }, 'post', '/events');
      expectResponseMatchesSpec({ status: 204, headers: {}, body: {} }, 'POST', '/auth/logout');
      expectResponseMatchesSpec({ status: 200, headers: { 'content-type': 'text/plain' }, body: {} }, 'POST', '/auth/revoke');
    });

    it('fails listing the Ajv errors when the body does not match', () => {
      const message = fails(() =>
        expectResponseMatchesSpec({ status: 201, headers: json, body: { ...published, id: 'x' } }, 'POST', '/events'),
      );
      expect(message).to.contain('POST /events -> 201').and.contain('/id').and.contain('pattern');
      expect(fails(() => expectResponseMatchesSpec({ status: 200, headers: json, body: published }, 'POST', '/events'))).to.contain(
        'duplicate',
      );
    });

    it('fails on an undocumented status, a wrong content type, a missing required header or an unexpected body', () => {
      expect(fails(() => expectResponseMatchesSpec({ status: 404, headers: json, body: {} }, 'GET', '/healthz'))).to.contain(
        'not documented',
      );
      expect(
        fails(() =>
          expectResponseMatchesSpec({ status: 201, headers: { 'content-type': 'text/html' }, body: published }, 'POST', '/events'),
        ),
      ).to.contain('content type');
      expect(
        fails(() =>
          expectResponseMatchesSpec(
            { status: 401, headers: json, body: { error: 'invalid_token', error_description: 'x' } },
            'GET',
            '/events',
          ),
        ),
      ).to.contain('WWW-Authenticate');
      expect(fails(() => expectResponseMatchesSpec({ status: 204, headers: json, body: { a: 1 } }, 'POST', '/auth/logout'))).to.contain(
        'no body',
      );
      expect(() => expectResponseMatchesSpec({ status: 200, headers: json, body: {} }, 'GET', '/nowhere')).to.throw('no operation');
    });

    it('falls back to the default answer, which still has to be an Error', () => {
      const body = { error: 'internal_error', error_description: 'Internal server error.' };
      expectResponseMatchesSpec({ status: 500, headers: json, body }, 'POST', '/events');
      expect(fails(() => expectResponseMatchesSpec({ status: 500, headers: json, body: { message: 'x' } }, 'POST', '/events'))).to.contain(
        'error_description',
      );
    });
  });

  describe('expectSseEventMatchesSpec', () => {
    it('has a schema for every control event', () => {
      const constants = (openApiSpec().components.schemas.SseEvent.oneOf as Json[]).map((variant) => variant.properties.event.const);
      expect(constants.filter((value) => value !== undefined)).to.have.members(CONTROL_EVENTS);
    });

    it('accepts events shaped as the spec says', () => {
      const expiresAt = '2024-06-10T06:18:20.000Z';
      expectSseEventMatchesSpec('connected', {
        connectionId: 'c1',
        topics: ['users/alice/**'],
        expiresAt,
        renewUrl: '/events/connections/c1/token',
        heartbeatMs: 15000,
      });
      expectSseEventMatchesSpec('reset', { reason: 'history_exhausted', lastEventId: '1-0' }, '1718000000000-3');
      expectSseEventMatchesSpec('token-expiring', { expiresAt, renewUrl: '/events/connections/c1/token' });
      expectSseEventMatchesSpec('token-renewed', { expiresAt });
      expectSseEventMatchesSpec('closed', { reason: 'shutdown' });
      expectSseEventMatchesSpec('message', { topic: 'public/news', data: null }, '1718000000000-0');
      expectSseEventMatchesSpec('message.created', { topic: 'users/alice/inbox', data: { any: ['json'] } });
    });

    it('fails on data that does not match, or a bad id or type', () => {
      expect(fails(() => expectSseEventMatchesSpec('closed', { reason: 'bored' }))).to.contain('/data/reason');
      expect(fails(() => expectSseEventMatchesSpec('token-renewed', { expiresAt: 'tomorrow' }))).to.contain('date-time');
      expect(fails(() => expectSseEventMatchesSpec('connected', { connectionId: 'c1' }))).to.contain('heartbeatMs');
      expect(fails(() => expectSseEventMatchesSpec('message', 1, 'not-an-id'))).to.contain('/id');
      expect(fails(() => expectSseEventMatchesSpec('bad type', 1))).to.contain('/event');
      // A published event's data names its topic around the value.
      expect(fails(() => expectSseEventMatchesSpec('message', { any: ['json'] }))).to.contain('topic');
      expect(fails(() => expectSseEventMatchesSpec('message', { topic: 'public/*', data: 1 }))).to.contain('/data/topic');
    });
  });
});
