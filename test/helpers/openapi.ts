import { fileURLToPath } from 'node:url';
import SwaggerParser from '@apidevtools/swagger-parser';
import Ajv2020Module from 'ajv/dist/2020.js';
import type { ErrorObject, ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';

/**
 * Checks answers of the server against `openapi.yaml`. The document is parsed and dereferenced
 * with swagger-parser once, in a root-level mocha `before` hook registered when this module is
 * first imported (the test files are loaded through `require`, where top-level await is not
 * available), so every check below is synchronous inside `it` and the hooks that follow.
 */

/** Absolute path of the repository's `openapi.yaml`. */
export const SPEC_PATH = fileURLToPath(new URL('../../openapi.yaml', import.meta.url));

// Both packages are CommonJS and also set `exports.default`; depending on the interop in use a
// default import yields `module.exports` or `exports.default`. `.default` exists either way.
type Ajv2020Class = typeof Ajv2020Module.default;
const Ajv2020 = ((Ajv2020Module as { default?: Ajv2020Class }).default ?? Ajv2020Module) as Ajv2020Class;
type AddFormats = typeof addFormatsModule.default;
const addFormats = ((addFormatsModule as { default?: AddFormats }).default ?? addFormatsModule) as AddFormats;

/** A loosely typed view of the dereferenced document (no `$ref` left in it). */
export type Json = Record<string, any>;

let loaded: Json | undefined;
let loading: Promise<Json> | undefined;

/** Parses and dereferences `openapi.yaml` (once; later calls return the same document). */
function loadSpec(): Promise<Json> {
  loading ??= SwaggerParser.dereference(SPEC_PATH).then((api) => {
    loaded = api;
    return loaded;
  });
  return loading;
}

if (typeof before === 'function') {
  before('load openapi.yaml', async () => {
    await loadSpec();
  });
}

/** The dereferenced OpenAPI document. @throws when it is not loaded yet (outside a test or hook). */
export function openApiSpec(): Json {
  if (loaded === undefined) {
    throw new Error('openapi.yaml is not loaded yet: use the helpers inside it()/hooks, or await loadSpec() first');
  }
  return loaded;
}

/** An Ajv instance for OpenAPI 3.1 schemas (JSON Schema 2020-12 plus the OpenAPI keywords). */
export function createSpecAjv(): InstanceType<Ajv2020Class> {
  const ajv = new Ajv2020({ allErrors: true, strict: true, strictTypes: false, allowUnionTypes: true });
  addFormats(ajv);
  // OpenAPI 3.1 Schema Object keywords that are annotations, not assertions.
  ajv.addVocabulary(['example', 'discriminator', 'xml', 'externalDocs']);
  return ajv;
}

const ajv = createSpecAjv();
const compiled = new WeakMap<object, ValidateFunction>();

function validatorFor(schema: object): ValidateFunction {
  const cached = compiled.get(schema);
  if (cached !== undefined) return cached;
  const validate = ajv.compile(schema);
  compiled.set(schema, validate);
  return validate;
}

function formatErrors(errors: readonly ErrorObject[] | null | undefined): string {
  return (errors ?? []).map((e) => `  - ${e.instancePath || '(root)'} ${e.message ?? e.keyword}${formatParams(e.params)}`).join('\n');
}

function formatParams(params: Record<string, unknown>): string {
  const entries = Object.entries(params);
  return entries.length === 0 ? '' : ` (${entries.map(([k, v]) => `${k}: ${JSON.stringify(v)}`).join(', ')})`;
}

/**
 * Validates `value` against a (dereferenced) schema.
 * @throws Error listing every Ajv error, prefixed with `what`.
 */
export function expectMatchesSchema(value: unknown, schema: object, what: string): void {
  const validate = validatorFor(schema);
  if (!validate(value)) {
    throw new Error(`${what} does not match the spec:\n${formatErrors(validate.errors)}\nvalue: ${preview(value)}`);
  }
}

function preview(value: unknown): string {
  const text = JSON.stringify(value);
  return text === undefined ? String(value) : text.length > 500 ? `${text.slice(0, 500)}…` : text;
}

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'] as const;

/** Every operation of the spec, e.g. `{ method: 'post', path: '/events' }`. */
export function specOperations(): Array<{ method: string; path: string }> {
  const operations: Array<{ method: string; path: string }> = [];
  for (const [pathTemplate, item] of Object.entries<Json>(openApiSpec().paths ?? {})) {
    for (const method of METHODS) {
      if (item[method] !== undefined) operations.push({ method, path: pathTemplate });
    }
  }
  return operations;
}

/** The operation object for `method` + `pathTemplate`. @throws when the spec has no such operation. */
export function specOperation(method: string, pathTemplate: string): Json {
  const operation = openApiSpec().paths?.[pathTemplate]?.[method.toLowerCase()];
  if (operation === undefined) {
    throw new Error(`The spec has no operation ${method.toUpperCase()} ${pathTemplate}`);
  }
  return operation as Json;
}

/** `application/json; charset=utf-8` -> `application/json`. */
function mediaTypeOf(contentType: unknown): string | undefined {
  if (typeof contentType !== 'string') return undefined;
  const type = contentType.split(';')[0]?.trim().toLowerCase();
  return type === undefined || type.length === 0 ? undefined : type;
}

/** Does the concrete media type match a spec key such as `application/json`, `text/*` or `*\/*`? */
function mediaTypeMatches(actual: string, listed: string): boolean {
  const [type, subtype] = listed.toLowerCase().split('/');
  const [actualType, actualSubtype] = actual.split('/');
  return (type === '*' || type === actualType) && (subtype === '*' || subtype === actualSubtype);
}

/** Is this a JSON media type (`application/json`, `application/problem+json`, ...)? */
export function isJsonMediaType(mediaType: string): boolean {
  return mediaType === 'application/json' || mediaType.endsWith('+json');
}

function isEmptyBody(body: unknown): boolean {
  if (body === undefined || body === null || body === '') return true;
  if (Buffer.isBuffer(body)) return body.length === 0;
  return typeof body === 'object' && Object.keys(body).length === 0; // supertest gives {} for no body
}

/** A response as supertest (or fetch + JSON.parse) gives it. */
export interface ResponseLike {
  status: number;
  headers: Record<string, any>;
  body: unknown;
}

/**
 * Asserts that a response is one the spec documents for this operation: the status is listed
 * (or the operation has `default`), every header the spec marks `required` is present, the
 * content type is one the spec lists (and the body is empty when it lists none), and a JSON body
 * validates against the listed schema.
 * @throws Error with a readable description (including every Ajv error) when it does not.
 */
export function expectResponseMatchesSpec(res: ResponseLike, method: string, pathTemplate: string): void {
  const where = `${method.toUpperCase()} ${pathTemplate} -> ${res.status}`;
  const operation = specOperation(method, pathTemplate);
  const responses: Json = operation.responses ?? {};
  const response: Json | undefined = responses[String(res.status)] ?? responses[`${String(res.status)[0]}XX`] ?? responses.default;
  if (response === undefined) {
    throw new Error(`${where}: status not documented (documented: ${Object.keys(responses).join(', ')})`);
  }

  const headers = lowerCaseKeys(res.headers ?? {});
  for (const [name, header] of Object.entries<Json>(response.headers ?? {})) {
    if (header.required === true && headers[name.toLowerCase()] === undefined) {
      throw new Error(`${where}: required header ${name} is missing`);
    }
  }

  const content: Json | undefined = response.content;
  if (content === undefined || Object.keys(content).length === 0) {
    if (!isEmptyBody(res.body)) {
      throw new Error(`${where}: the spec documents no body, got ${preview(res.body)}`);
    }
    return;
  }

  const actual = mediaTypeOf(headers['content-type']);
  const listed = Object.keys(content);
  const key = actual === undefined ? undefined : listed.find((candidate) => mediaTypeMatches(actual, candidate));
  if (actual === undefined || key === undefined) {
    throw new Error(`${where}: content type ${String(headers['content-type'])} is not one of ${listed.join(', ')}`);
  }
  const schema: Json | undefined = content[key]?.schema;
  if (schema !== undefined && isJsonMediaType(actual)) {
    expectMatchesSchema(res.body, schema, `${where} body (${actual})`);
  }
}

function lowerCaseKeys(record: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(record).map(([k, v]) => [k.toLowerCase(), v]));
}

/** The envelope schemas of the stream's events (`SseEvent.oneOf`), from the spec. */
function sseEventSchemas(): Json[] {
  const variants = openApiSpec().components?.schemas?.SseEvent?.oneOf;
  if (!Array.isArray(variants) || variants.length === 0) {
    throw new Error('The spec has no components.schemas.SseEvent.oneOf');
  }
  return variants as Json[];
}

/**
 * Asserts that one event received on `GET /events` matches the spec: its type selects the
 * control-event schema whose `event` is that constant (`connected`, `reset`, ...), otherwise the
 * published-event schema (whose `event` must be a valid, non-reserved `EventType`); the parsed
 * `data` (and `id`, when given) are validated against it.
 * @throws Error listing the Ajv errors when it does not match.
 */
export function expectSseEventMatchesSpec(type: string, data: unknown, id?: string): void {
  const variants = sseEventSchemas();
  const schema =
    variants.find((variant) => variant.properties?.event?.const === type) ??
    variants.find((variant) => variant.properties?.event?.const === undefined);
  if (schema === undefined) throw new Error(`The spec has no schema for SSE event ${type}`);
  if (id === undefined) {
    // Only the data was given: do not require the id the spec demands of the envelope.
    expectMatchesSchema({ event: type, data }, withoutRequiredId(schema), `SSE event ${type}`);
  } else {
    expectMatchesSchema({ id, event: type, data }, schema, `SSE event ${type}`);
  }
}

const idOptional = new WeakMap<object, Json>();
function withoutRequiredId(schema: Json): Json {
  let variant = idOptional.get(schema);
  if (variant === undefined) {
    const required = (schema.required as string[] | undefined) ?? [];
    variant = { ...schema, required: required.filter((name) => name !== 'id') };
    idOptional.set(schema, variant);
  }
  return variant;
}
