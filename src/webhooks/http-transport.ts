import http from 'node:http';
import https from 'node:https';
import { AddressRefusedError, addressProblem, checkedLookup, literalAddress, systemResolver, type Resolver } from './address-policy.js';
import type { WebhookTarget } from './webhook-config.js';
import type { WebhookAnswer, WebhookRequest, WebhookTransport } from './webhook-transport.js';

/**
 * An answer body is read (so the connection can be reused) but never kept; a receiver that sends
 * more than this gets its connection closed instead of being read on.
 */
const MAX_ANSWER_BYTES = 64 * 1024;

export interface HttpTransportOptions {
  /** How host names are resolved before every new connection. Default: the system resolver. */
  readonly resolver?: Resolver;
  /** Certificates trusted for https targets instead of Node's bundled CAs (a private CA). Default: Node's. */
  readonly ca?: string | Buffer | ReadonlyArray<string | Buffer>;
}

/**
 * Webhook requests over node:http/node:https: one keep-alive agent per target (at most
 * `maxConcurrentRequests` sockets), no redirects followed (Standard Webhooks: a 3xx is a failure),
 * and every new connection made through `checkedLookup`, so it goes only to an address the
 * target's policy allows. Node's own fetch (undici) would need the undici package for a custom
 * lookup; node:http takes one per request.
 */
export function createHttpTransport(options: HttpTransportOptions = {}): WebhookTransport {
  const resolver = options.resolver ?? systemResolver;
  const agents = new Map<string, http.Agent>();

  function agentFor(target: WebhookTarget): http.Agent {
    let agent = agents.get(target.name);
    if (agent === undefined) {
      const settings = { keepAlive: true, maxSockets: target.maxConcurrentRequests, maxFreeSockets: target.maxConcurrentRequests };
      agent =
        target.url.protocol === 'https:'
          ? new https.Agent(
              options.ca === undefined ? settings : { ...settings, ca: options.ca as string | Buffer | Array<string | Buffer> },
            )
          : new http.Agent(settings);
      agents.set(target.name, agent);
    }
    return agent;
  }

  return {
    send(target: WebhookTarget, request: WebhookRequest): Promise<WebhookAnswer> {
      return new Promise((resolve) => {
        let settled = false;
        const done = (answer: WebhookAnswer) => {
          if (!settled) {
            settled = true;
            resolve(answer);
          }
        };
        // Literal addresses are checked at start; checked again here because no lookup runs for them.
        const literal = literalAddress(target.url.hostname);
        const problem = literal === undefined ? undefined : addressProblem(literal, target.allowPrivateNetwork);
        if (problem !== undefined) {
          done({ error: new AddressRefusedError(target.url.hostname, literal!, problem) });
          return;
        }
        if (request.signal.aborted) {
          done({ error: request.signal.reason });
          return;
        }
        const library = target.url.protocol === 'https:' ? https : http;
        let outgoing: http.ClientRequest;
        try {
          outgoing = library.request(target.url, {
            method: 'POST',
            agent: agentFor(target),
            lookup: checkedLookup(resolver, target.allowPrivateNetwork),
            signal: request.signal,
            headers: {
              ...request.headers,
              'content-type': 'application/json',
              'content-length': String(request.body.length),
              'user-agent': 'notify-webhooks/1',
            },
          });
        } catch (error) {
          done({ error });
          return;
        }
        outgoing.on('response', (response) => {
          const retryAfter = response.headers['retry-after'];
          const answer: WebhookAnswer = { status: response.statusCode ?? 0, retryAfter };
          let received = 0;
          response.on('data', (chunk: Buffer) => {
            received += chunk.length;
            if (received > MAX_ANSWER_BYTES) response.destroy();
          });
          // The status is what counts; the body is only drained. An abort after the status (a
          // receiver that never finishes its body) still reports the status it gave.
          response.on('end', () => done(answer));
          response.on('close', () => done(answer));
          response.on('error', () => done(answer));
        });
        outgoing.on('error', (error) => done({ error: request.signal.aborted ? request.signal.reason : error }));
        outgoing.end(request.body);
      });
    },
    close(): void {
      for (const agent of agents.values()) agent.destroy();
      agents.clear();
    },
  };
}
