import { TooManyRequestsError } from '../../errors.js';
import type { StreamSlots } from '../backend.js';

/** `MAX_STREAMS_PER_USER` on one process: the streams each subject holds here. */
export class MemoryStreamSlots implements StreamSlots {
  private readonly held = new Map<string, Set<string>>();

  constructor(private readonly maxPerSubject: number) {}

  async acquire(subject: string, streamId: string): Promise<void> {
    let mine = this.held.get(subject);
    if ((mine?.size ?? 0) >= this.maxPerSubject) {
      throw new TooManyRequestsError('This account has too many open streams.', 5, 'too_many_streams');
    }
    if (mine === undefined) this.held.set(subject, (mine = new Set()));
    mine.add(streamId);
  }

  release(subject: string, streamId: string): void {
    const mine = this.held.get(subject);
    if (mine?.delete(streamId) && mine.size === 0) this.held.delete(subject);
  }

  /** Slots held over all subjects (tests). */
  get size(): number {
    let total = 0;
    for (const mine of this.held.values()) total += mine.size;
    return total;
  }
}
