/**
 * Server-Sent Events framing (HTML Living Standard §9.2.6), as a pure function from an event to
 * text. Field values that the format cannot carry are refused rather than escaped: a CR, LF or NUL
 * in an `event` or `id` would let the value end the field early and forge a second field or a
 * whole second event. `data` may contain line breaks: each line becomes its own `data:` field,
 * and the client joins them back with `\n`.
 */
export interface SseEvent {
  readonly id?: string;
  readonly event?: string;
  readonly data?: string;
  readonly retry?: number;
}

/** Characters no single-line field may hold. */
const LINE_BREAK_OR_NUL = /[\r\n\0]/;
const LINE_BREAK = /\r\n|\r|\n/;

export class SseFramingError extends TypeError {
  constructor(
    readonly field: 'id' | 'event' | 'retry' | 'comment',
    message: string,
  ) {
    super(message);
    this.name = 'SseFramingError';
  }
}

/** Whether `value` can be sent as a single-line SSE field (`id` or `event`). */
export function isSingleLineField(value: string): boolean {
  return !LINE_BREAK_OR_NUL.test(value);
}

/**
 * Frames one event. The result ends with the blank line that dispatches it.
 * @throws SseFramingError when `id` or `event` holds CR, LF or NUL, or `retry` is not a
 * non-negative integer.
 */
export function frameEvent(message: SseEvent): string {
  let out = '';
  if (message.retry !== undefined) {
    if (!Number.isSafeInteger(message.retry) || message.retry < 0) {
      throw new SseFramingError('retry', 'retry must be a non-negative integer');
    }
    out += `retry: ${message.retry}\n`;
  }
  if (message.id !== undefined) {
    if (!isSingleLineField(message.id)) throw new SseFramingError('id', 'id must not contain CR, LF or NUL');
    out += `id: ${message.id}\n`;
  }
  if (message.event !== undefined) {
    if (!isSingleLineField(message.event)) {
      throw new SseFramingError('event', 'event must not contain CR, LF or NUL');
    }
    out += `event: ${message.event}\n`;
  }
  if (message.data !== undefined) {
    for (const line of message.data.split(LINE_BREAK)) out += `data: ${line}\n`;
  }
  return `${out}\n`;
}

/**
 * One comment line, which clients ignore: used for heartbeats. It is a single line with no blank
 * line after it: a blank line is what dispatches an event, and some clients
 * (@microsoft/fetch-event-source, its issue #15) report `:\n\n` as an empty message. Written
 * only between whole frames, the line sits at the start of the next event's block, where a
 * parser drops it (HTML §9.2.6: a line starting with `:` is ignored). A line break in the text
 * would end the comment and start a field, so it is refused.
 */
export function frameComment(text = ''): string {
  if (LINE_BREAK_OR_NUL.test(text)) throw new SseFramingError('comment', 'comment must not contain CR, LF or NUL');
  return `:${text === '' ? '' : ` ${text}`}\n`;
}
