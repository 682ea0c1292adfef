import { DynamoUsageEpoch } from '../../adapters/dynamo/epoch';
import { DynamoUsageLedger } from '../../adapters/dynamo/ledger';
import { DynamoUsageIndex } from '../../adapters/dynamo/usage-index';
import { systemClock } from '../../app/ports/clock';
import { dynamoClient } from '../clients/dynamo';
import { area } from './base';

/** The usage table: the exactly-once counters, the periods' epochs and the per-period customer index. */
export const usageArea = area((r) => {
  const c = r.config;
  const db = dynamoClient();
  return {
    ledger: new DynamoUsageLedger(
      db,
      { usage: c.USAGE_TABLE, dedupe: c.DEDUPE_TABLE },
      {
        clock: systemClock,
        markerTtlSeconds: c.markerTtlSeconds,
        shards: c.COUNTER_SHARDS,
        ...(c.LEGACY_CLAIMS_UNTIL ? { legacyClaimsUntil: new Date(c.LEGACY_CLAIMS_UNTIL) } : {}),
      },
    ),
    epoch: new DynamoUsageEpoch(db, c.USAGE_TABLE),
    usageIndex: new DynamoUsageIndex(db, c.USAGE_TABLE),
  };
});
