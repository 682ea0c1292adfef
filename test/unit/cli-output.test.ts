import { describeFailure, output, printable, record, table } from '../../tools/cli-output';
import { ValidationError } from '../../lib/domain/errors';

/** A customer name an admin could set: clears the screen, retitles the window, rings, reorders text. */
const HOSTILE = 'Acme\u001b[2J\u001b]0;pwned\u0007 Ltd\u009b31m\u202eevil\u0000\r\n';
const ACTING = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e]/;

describe('the CLI shows text from the service without letting it act on the terminal', () => {
  it('shows control characters and reordering marks as their escapes', () => {
    expect(printable(HOSTILE)).toBe('Acme\\x1b[2J\\x1b]0;pwned\\x07 Ltd\\x9b31m\\u202eevil\\x00\\x0d\\x0a');
    expect(printable('Zoë Müller – 株式会社 🚀')).toBe('Zoë Müller – 株式会社 🚀');
  });

  it('in table cells, records, error lines and whole outputs, as text or JSON', () => {
    expect(table(['name'], [[HOSTILE]])).not.toMatch(ACTING);
    expect(record([['name', HOSTILE]])).not.toMatch(ACTING);
    const failure = describeFailure(new ValidationError('invalid_input', HOSTILE, [{ field: 'name', code: 'x', message: HOSTILE }]));
    for (const line of failure.lines) expect(line).not.toMatch(ACTING);
    const printed: string[] = [];
    const log = jest.spyOn(console, 'log').mockImplementation((s: string) => void printed.push(s));
    try {
      output(false, { name: HOSTILE }, (r) => `Customer: ${r.name}\n${table(['name'], [[r.name]])}`);
      output(true, { name: HOSTILE }, () => '');
    } finally {
      log.mockRestore();
    }
    expect(printed[0]).not.toMatch(ACTING);
    expect(printed[0]!.split('\n')[0]).toBe(`Customer: ${printable(HOSTILE, '\n').split('\n')[0]}`);
    expect(printed[1]).not.toMatch(ACTING);
    expect(JSON.parse(printed[1]!)).toEqual({ name: HOSTILE }); // still the exact value for scripts
  });
});
