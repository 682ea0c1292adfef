import { queueDepth } from '../runtime/queues';
import type { Stack } from '../runtime/stack';
import { tapMetrics } from './metrics-tap';

/**
 * One line at the bottom of a terminal that updates in place (`npm start`'s live status). Lines
 * printed through `print` clear it first and redraw it after, so they stay whole on lines of their
 * own. When the output is not a terminal (a pipe, a log file, the tests) nothing is drawn and
 * `print` is a plain write.
 */
export class StatusLine {
  private timer: NodeJS.Timeout | undefined;
  private current = '';
  private refreshing = false;
  readonly live: boolean;

  constructor(
    private readonly out: NodeJS.WriteStream,
    private readonly render: () => Promise<string>,
    private readonly everyMs = 1000,
  ) {
    this.live = out.isTTY === true;
  }

  start(): void {
    if (!this.live || this.timer) return;
    this.timer = setInterval(() => void this.refresh(), this.everyMs);
    this.timer.unref();
    void this.refresh();
  }

  /** Stops updating and clears the line. */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.clear();
    this.current = '';
  }

  /** Prints whole lines above the status line. */
  print(text: string, stream: NodeJS.WriteStream = this.out): void {
    this.clear();
    stream.write(`${text}\n`);
    this.draw();
  }

  private async refresh(): Promise<void> {
    if (this.refreshing) return; // a slow emulator answer: skip a beat rather than pile up
    this.refreshing = true;
    try {
      const text = await this.render();
      if (!this.timer) return;
      // Never wider than the terminal: a wrapped line could not be cleared with one carriage return.
      const width = Math.max(20, (this.out.columns || 120) - 1);
      this.current = text.length > width ? `${text.slice(0, width - 3)}...` : text;
      this.draw();
    } catch {
      // The status is a convenience; an emulator that is stopping must not print errors here.
    } finally {
      this.refreshing = false;
    }
  }

  private clear(): void {
    if (this.live && this.current) this.out.write('\r\x1b[2K');
  }

  private draw(): void {
    if (this.live && this.timer && this.current) this.out.write(`\r\x1b[2K${this.current}`);
  }
}

/**
 * What `npm start`'s status line shows: events counted per second, the usage queue and its DLQ,
 * alerts sent. Cheap: two queue reads, and counters fed in-process by the functions' metrics.
 */
export function liveStatus(stack: Stack): { render: () => Promise<string>; stop: () => void } {
  const counted = { events: 0, alerts: 0 };
  const stop = tapMetrics((name, value) => {
    if (name === 'EventsCounted') counted.events += value;
    else if (name === 'AlertsSent') counted.alerts += value;
  });
  let last = { at: Date.now(), events: 0 };
  const depth = async (url: string | undefined) => (url ? queueDepth(stack.sqs, url) : 0);
  const render = async () => {
    const [queue, dlq] = await Promise.all([depth(stack.resources.queues.UsageQueue?.url), depth(stack.resources.queues.UsageDLQ?.url)]);
    const now = Date.now();
    const rate = ((counted.events - last.events) * 1000) / Math.max(1, now - last.at);
    last = { at: now, events: counted.events };
    const n = (x: number) => x.toLocaleString('en-US');
    return `live: ${rate.toFixed(1)} events/s counted (${n(counted.events)} in all) | usage queue ${n(queue)} | DLQ ${n(dlq)}${dlq > 0 ? ' (not counted until redriven)' : ''} | alerts sent ${n(counted.alerts)}`;
  };
  return { render, stop };
}
