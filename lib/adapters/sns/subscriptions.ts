import {
  GetSubscriptionAttributesCommand,
  ListSubscriptionsByTopicCommand,
  SetSubscriptionAttributesCommand,
  SubscribeCommand,
  UnsubscribeCommand,
  type SNSClient,
} from '@aws-sdk/client-sns';

/**
 * Alert subscriptions on the alerts topic.
 *
 * - A customer's `alertEmail` gets an `email` subscription whose FilterPolicy (scope
 *   MessageAttributes) is `{"customerId":["<id>"]}`, so it receives that customer's alerts only.
 * - The ops address (`subscribeOps`) gets a subscription without a filter: every alert.
 *
 * Routing. In AWS the protocol is `email` and the endpoint the address. The routing is injectable
 * because an emulator does not send mail: fauxqs (local) ACCEPTS `email` subscriptions, keeps them
 * "PendingConfirmation" forever and never delivers to them (it only delivers to confirmed `sqs`
 * subscriptions). To see a customer's alerts locally, route them to an SQS queue instead:
 *
 *   new SnsAlertSubscriptions(sns, topicArn, { protocol: 'sqs', endpointFor: (email) => queueArn })
 *
 * Everything else (filter policy, move, removal) is the same for both routings.
 *
 * Subscription ARNs. Subscribe is called with `ReturnSubscriptionArn: true`, so SNS answers with the
 * real ARN even while an email subscription awaits its confirmation click; without it SNS answers
 * "pending confirmation", which cannot be unsubscribed (SNS deletes unconfirmed subscriptions
 * after 3 days). Such non-ARNs from older records are ignored; `isSubscriptionArn` tells them apart.
 *
 * Shared endpoints. SNS keeps ONE subscription per (topic, protocol, endpoint), and Subscribe with
 * different attributes fails ("Subscription already exists with different attributes"). So when
 * two customers use the same address (or a customer uses the ops address), the subscription is
 * shared: its filter lists every customer id (`{"customerId":["A","B"]}`), and removing one customer
 * takes their id out and unsubscribes only when none is left. A subscription without a customerId
 * filter (the ops one) already receives every alert and is never changed or removed by `sync`.
 * These read-modify-write updates are not atomic; customer updates are rare and an admin action,
 * so two of them racing on the same address is accepted.
 */

export interface SubscriptionRouting {
  /** SNS protocol: 'email' in AWS, 'sqs' to route alerts to a queue locally. */
  protocol: string;
  /** The SNS endpoint for an address: the address itself for email, a queue ARN for sqs. */
  endpointFor(email: string): string;
}

const EMAIL_ROUTING: SubscriptionRouting = { protocol: 'email', endpointFor: (email) => email };

export interface CustomerAlertEmail {
  email?: string;
  /** The ARN `sync` returned last time, if any. */
  subscriptionArn?: string;
}

/** True for a real subscription ARN; false for "pending confirmation", "PendingConfirmation", "Deleted", "". */
export function isSubscriptionArn(value: string | undefined): value is string {
  return value !== undefined && /^arn:[^:\s]+:sns:[^:\s]+:\d{12}:[^:\s]+:[^:\s]+$/.test(value);
}

/** The filter policy that lets through the alerts of these customers only. */
export function customerFilterPolicy(customerIds: string[]): string {
  return JSON.stringify({ customerId: [...new Set(customerIds)].sort() });
}

export class SnsAlertSubscriptions {
  constructor(
    private readonly sns: SNSClient,
    private readonly topicArn: string,
    private readonly routing: SubscriptionRouting = EMAIL_ROUTING,
  ) {}

  /**
   * Brings a customer's subscription from `previous` to `next`:
   * - same address as before (case-insensitive) with a known ARN: nothing to do;
   * - a new address: subscribe it (filtered to the customer) first, then release the old one, so a
   *   failure never leaves the customer without alerts;
   * - no address any more: release the old subscription.
   * Returns the ARN to store with the customer (none when there is no address).
   */
  async sync(customerId: string, previous: CustomerAlertEmail, next: { email?: string }): Promise<{ subscriptionArn?: string }> {
    if (customerId.length === 0) throw new TypeError('customerId is required');
    const before = normalize(previous.email);
    const after = normalize(next.email);
    const knownArn = isSubscriptionArn(previous.subscriptionArn) ? previous.subscriptionArn : undefined;

    if (after !== undefined && before !== undefined && after.toLowerCase() === before.toLowerCase() && knownArn !== undefined) {
      return { subscriptionArn: knownArn };
    }
    // Same address but the ARN is unknown (an older "pending confirmation" answer, or a sync that
    // failed half way) falls through: Subscribe with the same attributes is idempotent in SNS and
    // returns the existing subscription's ARN.
    const subscriptionArn = after === undefined ? undefined : await this.subscribeCustomer(customerId, after);
    if (knownArn !== undefined && knownArn !== subscriptionArn) await this.release(customerId, knownArn);
    return subscriptionArn === undefined ? {} : { subscriptionArn };
  }

  /** Subscribes the ops address to every alert (no filter policy); returns the subscription ARN. */
  async subscribeOps(email: string): Promise<{ subscriptionArn: string }> {
    const address = normalize(email);
    if (address === undefined) throw new TypeError('the ops email is required');
    const endpoint = this.routing.endpointFor(address);
    try {
      return { subscriptionArn: await this.subscribe(endpoint, undefined) };
    } catch (err) {
      if (!alreadyExists(err)) throw err;
    }
    // The address also receives a customer's alerts: drop that filter so it receives everything.
    const arn = await this.existing(endpoint);
    const attrs = await this.attributes(arn);
    if (attrs !== undefined && hasFilter(attrs)) await this.setFilterPolicy(arn, '{}');
    return { subscriptionArn: arn };
  }

  private async subscribeCustomer(customerId: string, address: string): Promise<string> {
    const endpoint = this.routing.endpointFor(address);
    try {
      return await this.subscribe(endpoint, customerFilterPolicy([customerId]));
    } catch (err) {
      if (!alreadyExists(err)) throw err;
    }
    // Shared with another customer or with ops: extend the filter of the existing subscription.
    const arn = await this.existing(endpoint);
    const attrs = await this.attributes(arn);
    if (attrs === undefined) throw new Error(`subscription ${arn} disappeared while subscribing ${customerId}`);
    const ids = managedCustomerIds(attrs);
    if (ids === null) {
      if (!hasFilter(attrs)) return arn; // unfiltered (ops): it receives this customer's alerts already
      throw new Error(
        `${this.routing.protocol} subscription ${arn} has a filter policy not managed here (${attrs.FilterPolicy}); cannot add customer ${customerId}`,
      );
    }
    if (!ids.includes(customerId)) await this.setFilterPolicy(arn, customerFilterPolicy([...ids, customerId]));
    return arn;
  }

  /** Stops sending this customer's alerts through `arn`, unsubscribing it when no customer is left. */
  private async release(customerId: string, arn: string): Promise<void> {
    const attrs = await this.attributes(arn);
    if (attrs === undefined) return; // gone already (unsubscribed from the email link, or expired)
    if (attrs.TopicArn !== undefined && attrs.TopicArn !== this.topicArn) return; // not on our topic
    const ids = managedCustomerIds(attrs);
    if (ids === null || !ids.includes(customerId)) return; // ops or another customer's: not ours to change
    const rest = ids.filter((id) => id !== customerId);
    if (rest.length > 0) {
      await this.setFilterPolicy(arn, customerFilterPolicy(rest));
      return;
    }
    try {
      await this.sns.send(new UnsubscribeCommand({ SubscriptionArn: arn }));
    } catch (err) {
      if (errorName(err) === 'NotFoundException') return;
      throw err;
    }
  }

  private async subscribe(endpoint: string, filterPolicy: string | undefined): Promise<string> {
    const out = await this.sns.send(
      new SubscribeCommand({
        TopicArn: this.topicArn,
        Protocol: this.routing.protocol,
        Endpoint: endpoint,
        ReturnSubscriptionArn: true,
        ...(filterPolicy === undefined ? {} : { Attributes: { FilterPolicy: filterPolicy, FilterPolicyScope: 'MessageAttributes' } }),
      }),
    );
    if (!isSubscriptionArn(out.SubscriptionArn)) throw new Error(`SNS Subscribe returned ${JSON.stringify(out.SubscriptionArn)} instead of a subscription ARN`);
    return out.SubscriptionArn;
  }

  /** The ARN of the topic's subscription for this endpoint (SNS lists pending ones without their ARN). */
  private async existing(endpoint: string): Promise<string> {
    let NextToken: string | undefined;
    do {
      const page = await this.sns.send(new ListSubscriptionsByTopicCommand({ TopicArn: this.topicArn, NextToken }));
      const found = (page.Subscriptions ?? []).find((s) => s.Protocol === this.routing.protocol && s.Endpoint === endpoint);
      if (found !== undefined) {
        if (isSubscriptionArn(found.SubscriptionArn)) return found.SubscriptionArn;
        throw new Error(`the ${this.routing.protocol} subscription of ${endpoint} is still pending confirmation; it can be shared once confirmed`);
      }
      NextToken = page.NextToken;
    } while (NextToken);
    throw new Error(`SNS reports a conflicting ${this.routing.protocol} subscription for ${endpoint} but does not list it`);
  }

  private async attributes(arn: string): Promise<Record<string, string> | undefined> {
    try {
      const out = await this.sns.send(new GetSubscriptionAttributesCommand({ SubscriptionArn: arn }));
      return out.Attributes ?? {};
    } catch (err) {
      if (errorName(err) === 'NotFoundException') return undefined;
      throw err;
    }
  }

  private async setFilterPolicy(arn: string, policy: string): Promise<void> {
    await this.sns.send(new SetSubscriptionAttributesCommand({ SubscriptionArn: arn, AttributeName: 'FilterPolicy', AttributeValue: policy }));
  }
}

function normalize(email: string | undefined): string | undefined {
  const trimmed = email?.trim();
  return trimmed ? trimmed : undefined;
}

function hasFilter(attrs: Record<string, string>): boolean {
  const policy = attrs.FilterPolicy?.trim();
  if (!policy) return false;
  try {
    const parsed: unknown = JSON.parse(policy);
    return !(typeof parsed === 'object' && parsed !== null && Object.keys(parsed).length === 0);
  } catch {
    return true;
  }
}

/**
 * The customer ids of a filter policy written by this class (`{"customerId":[...strings]}` on the
 * message attributes), or null for any other policy or none.
 */
function managedCustomerIds(attrs: Record<string, string>): string[] | null {
  if (attrs.FilterPolicyScope !== undefined && attrs.FilterPolicyScope !== 'MessageAttributes') return null;
  if (!attrs.FilterPolicy) return null;
  let policy: unknown;
  try {
    policy = JSON.parse(attrs.FilterPolicy);
  } catch {
    return null;
  }
  if (typeof policy !== 'object' || policy === null || Array.isArray(policy)) return null;
  const keys = Object.keys(policy);
  const ids = (policy as Record<string, unknown>).customerId;
  if (keys.length !== 1 || !Array.isArray(ids) || !ids.every((id): id is string => typeof id === 'string')) return null;
  return ids;
}

function errorName(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'name' in err ? String((err as { name: unknown }).name) : undefined;
}

function alreadyExists(err: unknown): boolean {
  return errorName(err) === 'InvalidParameterException' && /already exists/i.test(String((err as { message?: unknown }).message));
}
