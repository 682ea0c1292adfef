import type { ConsumedCapacity } from '@aws-sdk/client-dynamodb';

/**
 * Adds up DynamoDB write cost two ways:
 * - `reportedUnits`: what DynamoDB answers in ConsumedCapacity (ReturnConsumedCapacity: TOTAL);
 * - `pricedUnits`: what AWS bills by its published rules for what we sent: 1 WCU per standard
 *   write of an item up to 1 KB (also when its condition fails), 2 WCU per item in a transaction.
 * They agree on AWS; DynamoDB Local reports transactional writes at the standard rate (1 per item),
 * so locally the priced figure is the honest one.
 */
export class CapacityMeter {
  reportedUnits = 0;
  pricedUnits = 0;

  record(consumed: ConsumedCapacity | ConsumedCapacity[] | undefined): void {
    for (const c of Array.isArray(consumed) ? consumed : consumed ? [consumed] : []) {
      this.reportedUnits += c.WriteCapacityUnits ?? c.CapacityUnits ?? 0;
    }
  }
  /** Our item sizes stay under 1 KB (keys are bounded at 256-char source/id), so one unit per item. */
  price(standardWrites: number, transactionalItems = 0): void {
    this.pricedUnits += standardWrites + 2 * transactionalItems;
  }
  reset(): void {
    this.reportedUnits = 0;
    this.pricedUnits = 0;
  }
}

/** Process-wide meter: what this Lambda instance (or local process) has consumed so far. */
export const capacity = new CapacityMeter();
