import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import Koa from 'koa';
import request from 'supertest';
import { parse as parseYaml } from 'yaml';
import { createDocsRouter } from '../../src/http/routes/docs.js';
import { SPEC_PATH } from '../helpers/openapi.js';

/** supertest parser that keeps the body as bytes. */
function binary(res: request.Response, callback: (error: Error | null, body: Buffer) => void): void {
  const stream = res as unknown as NodeJS.ReadableStream;
  const chunks: Buffer[] = [];
  stream.on('data', (chunk: Buffer) => chunks.push(chunk));
  stream.on('end', () => callback(null, Buffer.concat(chunks)));
  stream.on('error', (error: Error) => callback(error, Buffer.alloc(0)));
}

function expectSecurityHeaders(res: request.Response): void {
  const csp = String(res.headers['content-security-policy']);
  expect(csp).to.contain("default-src 'none'");
  expect(csp).to.contain("script-src 'self'");
  expect(csp).to.not.match(/script-src[^;]*'unsafe-(inline|eval)'/);
  expect(csp).to.contain("frame-ancestors 'none'");
  expect(res.headers['x-content-type-options']).to.equal('nosniff');
}

describe('docs router', () => {
  const app = new Koa();
  app.use(createDocsRouter({ specFile: SPEC_PATH }).routes());
  const server = app.callback();

  it('refuses to build without a spec file', () => {
    expect(() => createDocsRouter({ specFile: '' })).to.throw(TypeError);
    expect(() => createDocsRouter({ specFile: '/nonexistent/openapi.yaml' })).to.throw();
  });

  it('serves openapi.yaml as YAML, byte for byte', async () => {
    const res = await request(server).get('/openapi.yaml').buffer(true).parse(binary).expect(200);
    expect(res.headers['content-type']).to.equal('application/yaml; charset=utf-8');
    expect((res.body as Buffer).equals(readFileSync(SPEC_PATH))).to.equal(true);
    expect((parseYaml((res.body as Buffer).toString('utf8')) as { openapi: string }).openapi).to.equal('3.1.0');
    expectSecurityHeaders(res);
  });

  describe('GET /docs', () => {
    let html = '';
    let res: request.Response;
    before(async () => {
      res = await request(server).get('/docs').expect(200);
      html = res.text;
    });

    it('is an HTML page with a strict Content-Security-Policy', () => {
      expect(res.headers['content-type']).to.equal('text/html; charset=utf-8');
      expect(html).to.contain('<div id="swagger-ui"></div>');
      expectSecurityHeaders(res);
    });

    it('has no inline script or inline event handler', () => {
      const scripts = [...html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/gi)];
      expect(scripts.length).to.equal(2);
      for (const [, attributes, body] of scripts) {
        expect(attributes).to.match(/\bsrc="/);
        expect(body?.trim()).to.equal('');
      }
      expect(html).to.not.match(/\son[a-z]+\s*=/i);
      expect(html).to.not.match(/javascript:/i);
    });

    it('references only same-origin assets, each of which answers with the right type', async () => {
      const urls = [...html.matchAll(/\b(?:src|href)="([^"]*)"/g)].map((match) => match[1] as string);
      expect(urls).to.include.members(['/docs/assets/swagger-ui.css', '/docs/assets/swagger-ui-bundle.js', '/docs/assets/init.js']);
      const types: Record<string, RegExp> = { css: /^text\/css\b/, js: /^text\/javascript\b/, png: /^image\/png$/ };
      for (const url of urls) {
        expect(url, url).to.match(/^\/docs\/assets\/[A-Za-z0-9._-]+$/); // a path on this host, nothing else
        const asset = await request(server).get(url).buffer(true).parse(binary).expect(200);
        const extension = url.slice(url.lastIndexOf('.') + 1);
        expect(asset.headers['content-type'], url).to.match(types[extension] as RegExp);
        expect(asset.headers['cache-control'], url).to.equal('public, max-age=86400');
        expect((asset.body as Buffer).length, url).to.be.greaterThan(0);
        expectSecurityHeaders(asset);
      }
    });

    it('answers /docs/ too', async () => {
      const slash = await request(server).get('/docs/');
      if (slash.status === 200) {
        expect(slash.text).to.equal(html);
      } else {
        expect(slash.status).to.be.oneOf([301, 302, 308]);
        expect(slash.headers.location).to.equal('/docs');
      }
      expectSecurityHeaders(slash);
    });
  });

  it('initialises Swagger UI from our spec, without the remote validator', async () => {
    const res = await request(server).get('/docs/assets/init.js').expect(200);
    const script = res.text;
    expect(script).to.contain('SwaggerUIBundle(');
    expect(script).to.match(/url:\s*'\/openapi\.yaml'/);
    expect(script).to.match(/dom_id:\s*'#swagger-ui'/);
    expect(script).to.match(/validatorUrl:\s*null/);
    expect(script).to.not.match(/https?:\/\//);
  });

  for (const path of [
    '/docs/assets/../../package.json',
    '/docs/assets/..%2F..%2Fpackage.json',
    '/docs/assets/%2e%2e/%2e%2e/package.json',
    '/docs/assets/..%5C..%5Cpackage.json',
    '/docs/assets/package.json',
    '/docs/assets/unknown.js',
    '/docs/assets/swagger-initializer.js',
    '/docs/assets/index.html',
    '/docs/assets/__proto__',
    '/docs/assets/',
  ]) {
    it(`answers 404 for ${path}`, async () => {
      const res = await request(server).get(path);
      expect(res.status).to.equal(404);
      expect(res.text).to.not.contain('"name": "notify-server"');
      expect(res.text).to.not.contain('swagger-ui-dist');
    });
  }
});
