import { DynamoIdempotency } from '../../adapters/dynamo/entities';
import { SqsJsonQueue } from '../../adapters/sqs/json-queue';
import { systemClock } from '../../app/ports/clock';
import { type UsageBatch } from '../../app/messages';
import { dynamoClient } from '../clients/dynamo';
import { sqsClient } from '../clients/sqs';
import { area } from './base';

/** Ingest: Idempotency-Key records and the usage queue. */
export const ingestArea = area((r) => ({
  idempotency: new DynamoIdempotency(dynamoClient(), r.config.DEDUPE_TABLE, () => systemClock.now()),
  usageQueue: new SqsJsonQueue<UsageBatch>(sqsClient(), r.config.USAGE_QUEUE_URL),
}));
