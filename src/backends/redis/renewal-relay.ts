import { randomBytes } from 'node:crypto';
import type { RedisClient } from './connect.js';
import type { AccessClaims } from '../../auth/token-service.js';
import { isErrorCode } from '../../error-codes.js';
import { AppError, BearerError, NotFoundError } from '../../errors.js';
import type { RenewalAnswer } from '../../streams/renew-connection.js';
import type { LocalStreams, RenewalForwarder } from '../backend.js';
import { orUnavailable } from './redis-unavailable-error.js';

export interface RenewalRelayOptions {
  readonly localStreams: LocalStreams;
  /** A `commands` connection, shared; not closed by the relay. */
  readonly commands: RedisClient;
  /** A dedicated `subscriber` connection (pub/sub mode); closed by `stop`. */
  readonly subscriber: RedisClient;
  readonly keyPrefix: string;
  /** How long the requesting instance waits for the stream's instance to answer. */
  readonly timeoutMs?: number;
  readonly onError: (error: Error) => void;
}

interface Request {
  readonly rid: string;
  readonly from: string;
  readonly connectionId: string;
  readonly claims: AccessClaims;
}

type Reply =
  | { readonly rid: string; readonly answer: RenewalAnswer }
  | { readonly rid: string; readonly error: { status: number; code: string; message: string } }
  /** "Not here": once every other instance has said so, the requester answers 404 without waiting out the timeout. */
  | { readonly rid: string; readonly absent: true };

/**
 * In-band renewal across instances: `POST /events/connections/{id}/token` may land on an
 * instance that does not hold the stream (a load balancer without sticky sessions). That
 * instance has verified the token; it broadcasts the request with the verified claims on
 * `<prefix>{<prefix>renewals}` (sharded pub/sub), the instance holding the stream renews it exactly as a local request
 * would, and answers on the requester's own channel. No answer within the timeout means no
 * instance holds the stream: 404, as for a local miss. Pub/sub (not a stream) because a
 * renewal is only meaningful now: if nobody hears it, the client reconnects.
 */
export class RenewalRelay implements RenewalForwarder {
  private readonly instance = randomBytes(8).toString('base64url');
  private readonly pending = new Map<string, (reply: Reply) => void>();
  private readonly requests: string;
  private readonly replies: string;

  constructor(private readonly options: RenewalRelayOptions) {
    // Sharded pub/sub in one slot (the hash tag): on Redis Cluster every instance hears the same
    // shard, so SPUBLISH's count of listeners covers all of them (plain PUBLISH counts one node's).
    this.requests = channel(options.keyPrefix);
    this.replies = channel(options.keyPrefix, this.instance);
  }

  async start(): Promise<void> {
    this.options.subscriber.on('smessage', (channel: string, message: string) => {
      try {
        if (channel === this.requests) void this.serve(JSON.parse(message) as Request);
        else if (channel === this.replies) {
          const reply = JSON.parse(message) as Reply;
          this.pending.get(reply.rid)?.(reply);
        }
      } catch (error) {
        this.options.onError(error as Error);
      }
    });
    await this.options.subscriber.ssubscribe(this.requests, this.replies);
  }

  /**
   * Asks the instance holding `connectionId` to renew it.
   * @throws the same errors as a local renewal; 503 when Redis is unreachable.
   */
  async forward(connectionId: string, claims: AccessClaims): Promise<RenewalAnswer> {
    const rid = randomBytes(12).toString('base64url');
    let absent = 0;
    let others = Number.POSITIVE_INFINITY;
    const reply = new Promise<Reply | undefined>((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(rid);
        resolve(undefined);
      }, this.options.timeoutMs ?? 2000);
      this.pending.set(rid, (answer) => {
        if ('absent' in answer) {
          if (++absent < others) return;
          answer = { rid, error: notFound() };
        }
        clearTimeout(timer);
        this.pending.delete(rid);
        resolve(answer);
      });
    });
    const request: Request = { rid, from: this.instance, connectionId, claims };
    const listeners = await orUnavailable(() => this.options.commands.spublish(this.requests, JSON.stringify(request))).catch((error) => {
      this.pending.get(rid)?.({ rid, error: { status: 503, code: 'redis_unavailable', message: '' } });
      throw error;
    });
    // Every subscribed instance hears the request, this one included (it ignores its own).
    others = Number(listeners) - 1;
    if (others <= 0 || absent >= others) this.pending.get(rid)?.({ rid, error: notFound() });
    const answer = await reply;
    if (answer === undefined) throw toError(notFound());
    if ('error' in answer) throw toError(answer.error);
    if ('absent' in answer) throw toError(notFound());
    return answer.answer;
  }

  async stop(): Promise<void> {
    this.options.subscriber.disconnect();
  }

  private async serve(request: Request): Promise<void> {
    if (request.from === this.instance) return;
    let reply: Reply;
    try {
      const answer = this.options.localStreams.renewIfHeld(request.connectionId, request.claims);
      reply = answer === undefined ? { rid: request.rid, absent: true } : { rid: request.rid, answer };
    } catch (error) {
      const appError = error instanceof AppError ? error : new AppError(500, 'internal_error', 'Renewal failed.');
      reply = { rid: request.rid, error: { status: appError.status, code: appError.code, message: appError.message } };
    }
    await this.options.commands
      .spublish(channel(this.options.keyPrefix, request.from), JSON.stringify(reply))
      .catch((error: Error) => this.options.onError(error));
  }
}

/** The requests channel, or an instance's replies channel; all in the slot of `{<prefix>renewals}`. */
function channel(keyPrefix: string, instance?: string): string {
  const base = `${keyPrefix}{${keyPrefix}renewals}`;
  return instance === undefined ? base : `${base}:${instance}`;
}

const notFound = () => ({ status: 404, code: 'connection_not_found', message: 'No open stream with this id for this account.' });

/** Rebuilds the error the holding instance answered with, so the HTTP answer is the same as a local one. */
function toError(error: { status: number; code: string; message: string }): AppError {
  if (error.code === 'connection_not_found') return new NotFoundError(error.message, error.code);
  if (error.code === 'insufficient_scope') return BearerError.insufficientScope(error.message);
  // A code this version does not know (a newer peer) is not passed on: the list is closed.
  return isErrorCode(error.code)
    ? new AppError(error.status, error.code, error.message)
    : new AppError(500, 'internal_error', error.message);
}
