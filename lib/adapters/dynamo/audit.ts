import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DeleteCommand, GetCommand, PutCommand, QueryCommand, TransactWriteCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { createHash } from 'node:crypto';
import { eventKey } from '../../domain/aggregation';
import { Q } from '../../domain/quantity';
import type { AuditLedger, CounterState, LocatedEvent, VoidRecord } from '../../app/ports/usage';
import { cancellationReasons, isConditionalCheckFailure } from '../aws-errors';
import { mapLimit } from '../../domain/concurrency';
import { allItems, documents, exact } from './documents';
import type { LedgerTables } from './ledger';
import { claimPk, counterSk, legacyClaimPk, dailySk, settledPk, uniqueSk, usagePk } from './usage-keys';

/**
 * Voids and hand repairs on the ledger's tables (docs/audit.md).
 *
 * Usage table (pk = <customerId>|<period>), beside the counters:
 *   v#<sha256 of source,id>   a void: source, id, reason, voidedAt, voidedBy (written once)
 *   a#<at>#<meter>[#<day>]    an audit entry of a repaired counter (of a day): before, after, by, reason
 * None of them has a `period` attribute, so the byPeriod index (who has usage) never sees them.
 */
const voidSk = (source: string, id: string) => `v#${createHash('sha256').update(eventKey({ source, id }), 'utf8').digest('hex')}`;

export class DynamoAuditLedger implements AuditLedger {
  private readonly db: DynamoDBDocumentClient;
  constructor(
    client: DynamoDBClient,
    private readonly tables: LedgerTables,
  ) {
    this.db = documents(client);
  }

  async locate(customerId: string, source: string, id: string): Promise<LocatedEvent | undefined> {
    const claim = async (pk: string) => (await this.db.send(new GetCommand({ TableName: this.tables.dedupe, Key: { pk }, ConsistentRead: true }))).Item;
    // The claim by (customer, source, id); an event claimed before the identity had the customer
    // has its claim by (source, id), which must then name this customer.
    const m = ((await claim(claimPk({ customerId, source, id }))) ?? (await claim(legacyClaimPk({ source, id })))) as
      { claimedBy: string; c?: string; p?: string; g?: number } | undefined;
    // A marker written before markers remembered their place cannot be found again.
    if (!m || m.c !== customerId || m.p === undefined || m.g === undefined) return undefined;
    const settled = await this.db.send(new GetCommand({ TableName: this.tables.dedupe, Key: { pk: settledPk(m.claimedBy) }, ConsistentRead: true }));
    return { customerId: m.c, period: m.p, batchId: m.claimedBy, group: Number(m.g), settled: settled.Item !== undefined };
  }

  async voids(customerId: string, period: string): Promise<VoidRecord[]> {
    const records: VoidRecord[] = [];
    const items = allItems<VoidRecord>((start) =>
      this.db.send(
        new QueryCommand({
          TableName: this.tables.usage,
          KeyConditionExpression: 'pk = :pk AND begins_with(sk, :v)',
          ExpressionAttributeValues: { ':pk': usagePk(customerId, period), ':v': 'v#' },
          ConsistentRead: true,
          ExclusiveStartKey: start,
        }),
      ),
    );
    for await (const v of items) records.push({ source: v.source, id: v.id, reason: v.reason, voidedAt: v.voidedAt, voidedBy: v.voidedBy });
    return records;
  }

  async recordVoid(customerId: string, period: string, record: VoidRecord, subtract: { meter: string; value: string }[], day: string): Promise<boolean> {
    const pk = usagePk(customerId, period);
    const minus = (value: string) => exact(value.startsWith('-') ? value.slice(1) : `-${value}`);
    try {
      await this.db.send(
        new TransactWriteCommand({
          TransactItems: [
            {
              Put: {
                TableName: this.tables.usage,
                Item: { pk, sk: voidSk(record.source, record.id), ...record },
                ConditionExpression: 'attribute_not_exists(pk)',
              },
            },
            // The event leaves its period and its day together, under the void record's condition.
            ...subtract.flatMap((s) =>
              [counterSk(s.meter), dailySk(s.meter, day)].map((sk) => ({
                Update: {
                  TableName: this.tables.usage,
                  Key: { pk, sk },
                  UpdateExpression: 'ADD #v :d',
                  ExpressionAttributeNames: { '#v': 'value' },
                  ExpressionAttributeValues: { ':d': minus(s.value) },
                },
              })),
            ),
          ],
        }),
      );
      return true;
    } catch (err) {
      if (cancellationReasons(err)?.[0] === 'ConditionalCheckFailed') return false;
      throw err;
    }
  }

  async counter(customerId: string, period: string, meter: string, day?: string): Promise<CounterState | undefined> {
    const base = day === undefined ? counterSk(meter) : dailySk(meter, day);
    // The counter's item and its shards (`<sk>#<n>`): BETWEEN keeps other counters out
    // (`m#api_calls_v2` and the next day both sort after `<sk>#~`).
    const out = await this.db.send(
      new QueryCommand({
        TableName: this.tables.usage,
        KeyConditionExpression: 'pk = :pk AND sk BETWEEN :from AND :to',
        ExpressionAttributeValues: { ':pk': usagePk(customerId, period), ':from': base, ':to': `${base}#~` },
        ConsistentRead: true,
      }),
    );
    const items = (out.Items ?? []).filter((i) => i.value !== undefined);
    if (items.length === 0) return undefined;
    const shards = items.map((i) => ({ sk: String(i.sk), value: String(i.value) }));
    const value = shards.reduce((sum, sh) => sum.plus(sh.value), new Q(0)).toFixed();
    const held = items.find((i) => i.sk === base);
    return { value, ...(held?.ord !== undefined ? { order: String(held.ord) } : {}), ...(shards.length > 1 ? { shards } : {}) };
  }

  async setCounter(
    customerId: string,
    period: string,
    meter: string,
    expected: CounterState | undefined,
    next: CounterState | undefined,
    day?: string,
  ): Promise<boolean> {
    if (expected?.shards)
      return this.setSharded(customerId, period, day === undefined ? counterSk(meter) : dailySk(meter, day), expected.shards, next, day === undefined);
    const Key = { pk: usagePk(customerId, period), sk: day === undefined ? counterSk(meter) : dailySk(meter, day) };
    // Period counters name their customer and period for the byPeriod index; a day's counter does not.
    const names = day === undefined ? ', customerId = :c, period = :p' : '';
    const nameValues = day === undefined ? { ':c': customerId, ':p': period } : {};
    // The counter must still hold what the caller read: same value, and for LATEST the same reading.
    const condition =
      expected === undefined
        ? { ConditionExpression: 'attribute_not_exists(#v)', ExpressionAttributeNames: { '#v': 'value' }, ExpressionAttributeValues: undefined }
        : {
            ConditionExpression: expected.order === undefined ? '#v = :old AND attribute_not_exists(ord)' : '#v = :old AND ord = :oldOrd',
            ExpressionAttributeNames: { '#v': 'value' },
            ExpressionAttributeValues: { ':old': exact(expected.value), ...(expected.order === undefined ? {} : { ':oldOrd': expected.order }) },
          };
    try {
      if (next === undefined) {
        if (expected === undefined) return true;
        await this.db.send(new DeleteCommand({ TableName: this.tables.usage, Key, ...condition }));
      } else {
        await this.db.send(
          new UpdateCommand({
            TableName: this.tables.usage,
            Key,
            UpdateExpression: next.order === undefined ? `SET #v = :new${names} REMOVE ord` : `SET #v = :new, ord = :newOrd${names}`,
            ConditionExpression: condition.ConditionExpression,
            ExpressionAttributeNames: condition.ExpressionAttributeNames,
            ExpressionAttributeValues: {
              ...condition.ExpressionAttributeValues,
              ':new': exact(next.value),
              ...nameValues,
              ...(next.order === undefined ? {} : { ':newOrd': next.order }),
            },
          }),
        );
      }
      return true;
    } catch (err) {
      if (isConditionalCheckFailure(err)) return false;
      throw err;
    }
  }

  /**
   * A sharded (additive) counter is set as a whole: every shard must still hold what was read, the
   * other shards keep their values and the base item takes the difference, in one transaction.
   */
  private async setSharded(
    customerId: string,
    period: string,
    base: string,
    shards: { sk: string; value: string }[],
    next: CounterState | undefined,
    named: boolean,
  ): Promise<boolean> {
    const pk = usagePk(customerId, period);
    const others = shards.filter((sh) => sh.sk !== base);
    const rest = others.reduce((sum, sh) => sum.plus(sh.value), new Q(0));
    const target = next === undefined ? new Q(0) : new Q(next.value);
    const held = shards.find((sh) => sh.sk === base);
    try {
      await this.db.send(
        new TransactWriteCommand({
          TransactItems: [
            ...others.map((sh) => ({
              ConditionCheck: {
                TableName: this.tables.usage,
                Key: { pk, sk: sh.sk },
                ConditionExpression: '#v = :v',
                ExpressionAttributeNames: { '#v': 'value' },
                ExpressionAttributeValues: { ':v': exact(sh.value) },
              },
            })),
            {
              Update: {
                TableName: this.tables.usage,
                Key: { pk, sk: base },
                // Period counters name their customer and period for the byPeriod index; a day's does not.
                UpdateExpression: named ? 'SET #v = :new, customerId = :c, period = :p' : 'SET #v = :new',
                ConditionExpression: held === undefined ? 'attribute_not_exists(#v)' : '#v = :old',
                ExpressionAttributeNames: { '#v': 'value' },
                ExpressionAttributeValues: {
                  ':new': exact(target.minus(rest).toFixed()),
                  ...(named ? { ':c': customerId, ':p': period } : {}),
                  ...(held === undefined ? {} : { ':old': exact(held.value) }),
                },
              },
            },
          ],
        }),
      );
      return true;
    } catch (err) {
      if ((cancellationReasons(err) ?? []).includes('ConditionalCheckFailed')) return false;
      throw err;
    }
  }

  async syncUnique(customerId: string, period: string, meter: string, values: Iterable<string>): Promise<void> {
    const pk = usagePk(customerId, period);
    const wanted = new Set([...values].map((v) => uniqueSk(meter, v)));
    const stored = new Set<string>();
    const items = allItems<{ sk: string }>((start) =>
      this.db.send(
        new QueryCommand({
          TableName: this.tables.usage,
          KeyConditionExpression: 'pk = :pk AND begins_with(sk, :u)',
          ExpressionAttributeValues: { ':pk': pk, ':u': `u#${meter}#` },
          ProjectionExpression: 'sk',
          ConsistentRead: true,
          ExclusiveStartKey: start,
        }),
      ),
    );
    for await (const item of items) stored.add(item.sk);
    await mapLimit(
      [...wanted].filter((sk) => !stored.has(sk)),
      16,
      (sk) => this.db.send(new PutCommand({ TableName: this.tables.usage, Item: { pk, sk } })),
    );
    await mapLimit(
      [...stored].filter((sk) => !wanted.has(sk)),
      16,
      (sk) => this.db.send(new DeleteCommand({ TableName: this.tables.usage, Key: { pk, sk } })),
    );
  }

  async audit(
    customerId: string,
    period: string,
    entry: { meter: string; day?: string; before: string; after: string; by: string; at: string; reason: string },
  ): Promise<void> {
    const sk = `a#${entry.at}#${entry.meter}${entry.day === undefined ? '' : `#${entry.day}`}`;
    await this.db.send(new PutCommand({ TableName: this.tables.usage, Item: { pk: usagePk(customerId, period), sk, ...entry } }));
  }
}
