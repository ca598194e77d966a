import { expect } from 'chai';
import { frameComment, frameEvent, isSingleLineField, SseFramingError } from '../../../src/sse/frame.js';
import { mulberry32 } from '../../helpers/random.js';
import { errorOf } from '../../helpers/errors.js';

interface ParsedEvent {
  type: string;
  data: string;
  lastEventId: string;
}

/**
 * An event-stream parser following the HTML Living Standard §9.2.6 ("Interpreting an event
 * stream"): lines end with CRLF, LF or CR; a blank line dispatches; `:` starts a comment; one
 * space after the colon is dropped; `data` lines are joined with LF; an `id` holding NUL is ignored.
 */
function parseEventStream(text: string): { events: ParsedEvent[]; retry: number | undefined; comments: string[] } {
  const events: ParsedEvent[] = [];
  const comments: string[] = [];
  let retry: number | undefined;
  let data = '';
  let type = '';
  let idBuffer = '';
  const lines = text.split(/\r\n|\r|\n/);
  // The text after the last line break is an incomplete line, never processed.
  lines.pop();
  for (const line of lines) {
    if (line === '') {
      const lastEventId = idBuffer;
      if (data === '') {
        type = '';
        continue;
      }
      if (data.endsWith('\n')) data = data.slice(0, -1);
      events.push({ type: type === '' ? 'message' : type, data, lastEventId });
      data = '';
      type = '';
      continue;
    }
    if (line.startsWith(':')) {
      comments.push(line.slice(1));
      continue;
    }
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') type = value;
    else if (field === 'data') data += `${value}\n`;
    else if (field === 'id') {
      if (!value.includes('\0')) idBuffer = value;
    } else if (field === 'retry') {
      if (/^[0-9]+$/.test(value)) retry = Number(value);
    }
  }
  return { events, retry, comments };
}

describe('frameEvent', () => {
  it('produces the exact bytes when id, event and data are given', () => {
    expect(frameEvent({ id: '1700000000000-3', event: 'message', data: '{"a":1}' })).to.equal(
      'id: 1700000000000-3\nevent: message\ndata: {"a":1}\n\n',
    );
  });

  it('puts retry first when retry is given', () => {
    expect(frameEvent({ retry: 3000, id: '1-0', event: 'e', data: 'x' })).to.equal('retry: 3000\nid: 1-0\nevent: e\ndata: x\n\n');
    expect(frameEvent({ retry: 0 })).to.equal('retry: 0\n\n');
  });

  it('omits fields when they are not given', () => {
    expect(frameEvent({ data: 'only' })).to.equal('data: only\n\n');
    expect(frameEvent({ event: 'ping' })).to.equal('event: ping\n\n');
    expect(frameEvent({})).to.equal('\n');
  });

  it('keeps an empty data field when data is the empty string', () => {
    expect(frameEvent({ data: '' })).to.equal('data: \n\n');
    expect(parseEventStream(frameEvent({ data: '' })).events).to.deep.equal([{ type: 'message', data: '', lastEventId: '' }]);
  });

  it('writes one data line per line when data holds LF, CRLF or CR', () => {
    expect(frameEvent({ data: 'a\nb' })).to.equal('data: a\ndata: b\n\n');
    expect(frameEvent({ data: 'a\r\nb' })).to.equal('data: a\ndata: b\n\n');
    expect(frameEvent({ data: 'a\rb' })).to.equal('data: a\ndata: b\n\n');
    expect(frameEvent({ data: 'a\n\nb\r\n' })).to.equal('data: a\ndata: \ndata: b\ndata: \n\n');
    expect(frameEvent({ data: '\r\r\n' })).to.equal('data: \ndata: \ndata: \n\n');
  });

  for (const field of ['id', 'event'] as const) {
    for (const [name, bad] of [
      ['CR', '\r'],
      ['LF', '\n'],
      ['CRLF', '\r\n'],
      ['NUL', '\0'],
    ] as const) {
      it(`throws SseFramingError for ${field} when ${field} contains ${name}`, () => {
        const error = errorOf(() => frameEvent({ [field]: `a${bad}data: forged`, data: 'x' }));
        expect(error).to.be.instanceOf(SseFramingError);
        expect(error).to.be.instanceOf(TypeError);
        expect(error).to.have.property('field', field);
      });
    }
  }

  for (const retry of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53]) {
    it(`throws SseFramingError for retry when retry is ${retry}`, () => {
      const error = errorOf(() => frameEvent({ retry, data: 'x' }));
      expect(error).to.be.instanceOf(SseFramingError);
      expect(error).to.have.property('field', 'retry');
    });
  }

  it('is parsed back into the same id, type and retry by a spec parser', () => {
    const parsed = parseEventStream(frameEvent({ retry: 2500, id: '5-1', event: 'update', data: ' leading: space' }));
    expect(parsed.retry).to.equal(2500);
    expect(parsed.events).to.deep.equal([{ type: 'update', data: ' leading: space', lastEventId: '5-1' }]);
  });

  it('round-trips random data with line breaks through a spec parser, normalising CRLF and CR to LF', () => {
    const random = mulberry32(2024);
    const alphabet = ['a', 'Z', ' ', ':', 'é', '😀', '\n', '\r', '\r\n', '\0', 'data: ', 'id: x', '{"k":1}', '\t'];
    const failures: string[] = [];
    const stream: string[] = [];
    const inputs: string[] = [];
    for (let i = 0; i < 2000; i++) {
      const length = Math.floor(random() * 12);
      const data = Array.from({ length }, () => alphabet[Math.floor(random() * alphabet.length)]!).join('');
      const frame = frameEvent({ id: `${i}-0`, event: 'm', data });
      stream.push(frame);
      inputs.push(data);
      const parsed = parseEventStream(frame).events;
      const expected = data.replace(/\r\n|\r/g, '\n');
      if (parsed.length !== 1 || parsed[0]!.data !== expected || parsed[0]!.lastEventId !== `${i}-0` || parsed[0]!.type !== 'm') {
        failures.push(JSON.stringify({ data, parsed }));
      }
    }
    expect(failures.slice(0, 5)).to.deep.equal([]);
    // Concatenated, the frames are still exactly one event each: no data value can end an event early.
    const all = parseEventStream(stream.join('')).events;
    expect(all.map((event) => event.data)).to.deep.equal(inputs.map((data) => data.replace(/\r\n|\r/g, '\n')));
  });
});

describe('isSingleLineField', () => {
  it('is false when the value holds CR, LF or NUL and true otherwise', () => {
    expect(isSingleLineField('1700000000000-0')).to.equal(true);
    expect(isSingleLineField('')).to.equal(true);
    for (const bad of ['a\r', '\nb', 'a\r\nb', 'a\0']) expect(isSingleLineField(bad)).to.equal(false);
  });
});

describe('frameComment', () => {
  it('produces one bare colon line, with no blank line that would dispatch an event', () => {
    expect(frameComment()).to.equal(':\n');
    expect(frameComment('')).to.equal(':\n');
  });

  it('produces the exact bytes when text is given and is ignored by a spec parser', () => {
    expect(frameComment('heartbeat')).to.equal(': heartbeat\n');
    const parsed = parseEventStream(frameComment('heartbeat'));
    expect(parsed.events).to.deep.equal([]);
    expect(parsed.comments).to.deep.equal([' heartbeat']);
  });

  it('leaves the event after it intact when written between two frames', () => {
    const first = frameEvent({ id: '1-0', event: 'tick', data: '1' });
    const second = frameEvent({ id: '2-0', event: 'tick', data: '2' });
    const parsed = parseEventStream(first + frameComment() + frameComment() + second);
    expect(parsed.events).to.deep.equal([
      { type: 'tick', data: '1', lastEventId: '1-0' },
      { type: 'tick', data: '2', lastEventId: '2-0' },
    ]);
    expect(parsed.comments).to.deep.equal(['', '']);
  });

  for (const bad of ['a\nb', 'a\rb', 'a\r\nb', 'a\0b']) {
    it(`throws SseFramingError for comment when the text is ${JSON.stringify(bad)}`, () => {
      const error = errorOf(() => frameComment(bad));
      expect(error).to.be.instanceOf(SseFramingError);
      expect(error).to.have.property('field', 'comment');
    });
  }
});
