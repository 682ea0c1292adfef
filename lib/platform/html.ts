import escapeHtml from 'escape-html';

/**
 * HTML built by tagged templates (`markup`, a name prettier leaves alone: it would reformat an
 * `html` template and change what the page's stylesheet hash covers) that escape every interpolated value (escape-html: & < > " ')
 * unless it is itself `Html` made here. Customer-supplied text (names, alert subjects, invoice line
 * descriptions) can only reach a page through an interpolation, so it can only arrive escaped.
 */
export class Html {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
}

type Part = Html | string | number | null | undefined | false | readonly Part[];

function render(part: Part): string {
  if (part === null || part === undefined || part === false) return '';
  if (part instanceof Html) return part.text;
  if (Array.isArray(part)) return part.map(render).join('');
  return escapeHtml(String(part));
}

export function markup(strings: TemplateStringsArray, ...values: Part[]): Html {
  let out = strings[0]!;
  values.forEach((v, i) => (out += render(v) + strings[i + 1]!));
  return new Html(out);
}
