import type { ConsumedCapacity } from '@aws-sdk/client-dynamodb';

/** Adds up the write/read units DynamoDB reports (ReturnConsumedCapacity) for metrics and benchmarks. */
export class CapacityMeter {
  writeUnits = 0;
  readUnits = 0;

  record(consumed: ConsumedCapacity | ConsumedCapacity[] | undefined): void {
    for (const c of Array.isArray(consumed) ? consumed : consumed ? [consumed] : []) {
      this.writeUnits += c.WriteCapacityUnits ?? (c.ReadCapacityUnits === undefined ? c.CapacityUnits ?? 0 : 0);
      this.readUnits += c.ReadCapacityUnits ?? 0;
    }
  }
  reset(): void {
    this.writeUnits = 0;
    this.readUnits = 0;
  }
}

/** Process-wide meter: what this Lambda instance (or local process) has consumed so far. */
export const capacity = new CapacityMeter();
