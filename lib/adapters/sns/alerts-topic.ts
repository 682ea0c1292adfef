import { PublishCommand, type MessageAttributeValue, type SNSClient } from '@aws-sdk/client-sns';

/**
 * Publishes alerts to the one alerts topic. Subscribers filter on the message attributes
 * (`customerId`, `kind`, `meter`, `threshold`, all DataType String); email subscribers see the
 * subject line and the JSON body; SQS subscribers without raw delivery get the SNS envelope
 * (`Subject`, `Message` = the JSON body, `MessageAttributes`).
 */

/** What `alertMessage` (lib/domain/alerts) produces; kept structural so the adapter has no domain dependency. */
export interface AlertNotification {
  subject: string;
  body: object;
  attributes: { customerId: string; kind: string; meter: string; threshold: string };
}

const ATTRIBUTE_NAMES = ['customerId', 'kind', 'meter', 'threshold'] as const;

/** SNS: "Subjects must be ... no line breaks or control characters, and less than 100 characters long". */
const SNS_SUBJECT_MAX = 99;

export class SnsAlertPublisher {
  constructor(
    private readonly sns: SNSClient,
    private readonly topicArn: string,
  ) {}

  /** Publishes one alert and returns SNS's MessageId. */
  async publish(msg: AlertNotification): Promise<string> {
    const MessageAttributes: Record<string, MessageAttributeValue> = {};
    for (const name of ATTRIBUTE_NAMES) {
      const value = msg.attributes[name];
      // SNS refuses empty String attribute values; a missing one would also defeat filter policies.
      if (typeof value !== 'string' || value.length === 0)
        throw new TypeError(`alert attribute ${name} must be a non-empty string, got ${JSON.stringify(value)}`);
      MessageAttributes[name] = { DataType: 'String', StringValue: value };
    }
    const subject = snsSubject(msg.subject);
    const out = await this.sns.send(
      new PublishCommand({
        TopicArn: this.topicArn,
        Message: JSON.stringify(msg.body),
        ...(subject === undefined ? {} : { Subject: subject }),
        MessageAttributes,
      }),
    );
    if (!out.MessageId) throw new Error(`SNS Publish to ${this.topicArn} returned no MessageId`);
    return out.MessageId;
  }
}

const REPLACEMENTS: [RegExp, string][] = [
  [/[\u2018\u2019\u201a\u201b\u2032\u0060\u00b4]/g, "'"],
  [/[\u201c\u201d\u201e\u201f\u2033\u00ab\u00bb]/g, '"'],
  [/[\u2010-\u2015\u2212]/g, '-'],
  [/\u2026/g, '...'],
  [/\u20ac/g, 'EUR '],
  [/\u00a3/g, 'GBP '],
  [/\u00a5/g, 'JPY '],
  [/\u00df/g, 'ss'],
  [/[\u00e6]/g, 'ae'],
  [/[\u00c6]/g, 'AE'],
  [/[\u00f8]/g, 'o'],
  [/[\u00d8]/g, 'O'],
  [/[\u0142]/g, 'l'],
  [/[\u0141]/g, 'L'],
];

/**
 * A subject SNS and mail clients accept: printable ASCII only (accents are dropped, typographic
 * quotes and dashes become ASCII, anything else "?"), one line, white space collapsed, at most
 * 99 characters (cut with "..."). Undefined when nothing printable is left (Subject is optional).
 */
export function snsSubject(text: string): string | undefined {
  let s = text.normalize('NFKD').replace(/\p{M}+/gu, '');
  for (const [re, to] of REPLACEMENTS) s = s.replace(re, to);
  s = s
    .replace(/[\p{Cc}\p{Zl}\p{Zp}]/gu, ' ') // line breaks, tabs and other control characters
    .replace(/\p{Zs}/gu, ' ')
    .replace(/[^\x20-\x7e]/gu, '?') // one "?" per code point (the u flag keeps surrogate pairs together)
    .replace(/ {2,}/g, ' ')
    .trim();
  if (s.length === 0) return undefined;
  return s.length <= SNS_SUBJECT_MAX ? s : `${s.slice(0, SNS_SUBJECT_MAX - 3).trimEnd()}...`;
}
