import { DynamoAuditLedger } from '../../adapters/dynamo/audit';
import { dynamoClient } from '../clients/dynamo';
import { area } from './base';

/** The audit ledger: voids and the counters' repair, on the usage and dedupe tables. */
export const auditArea = area((r) => ({ audit: new DynamoAuditLedger(dynamoClient(), { usage: r.config.USAGE_TABLE, dedupe: r.config.DEDUPE_TABLE }) }));
