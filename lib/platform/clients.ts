import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { SNSClient } from '@aws-sdk/client-sns';
import { SQSClient } from '@aws-sdk/client-sqs';
import { config } from './config';

/**
 * AWS clients, created once per function instance. Locally the endpoints point at DynamoDB Local
 * and fauxqs; fauxqs finds queues by their exact URL, so the SQS client must not rewrite it.
 */
let dynamo: DynamoDBClient | undefined;
let sqs: SQSClient | undefined;
let sns: SNSClient | undefined;
let s3: S3Client | undefined;

const local = () => (config().isLocal ? { credentials: { accessKeyId: 'local', secretAccessKey: 'local' } } : {});

export function dynamoClient(): DynamoDBClient {
  const c = config();
  return (dynamo ??= new DynamoDBClient({ region: c.AWS_REGION, endpoint: c.DYNAMODB_ENDPOINT, maxAttempts: 8, ...local() }));
}
export function sqsClient(): SQSClient {
  const c = config();
  return (sqs ??= new SQSClient({ region: c.AWS_REGION, endpoint: c.SQS_ENDPOINT, useQueueUrlAsEndpoint: false, ...local() }));
}
export function snsClient(): SNSClient {
  const c = config();
  return (sns ??= new SNSClient({ region: c.AWS_REGION, endpoint: c.SNS_ENDPOINT, ...local() }));
}
export function s3Client(): S3Client {
  const c = config();
  // The emulator serves buckets by path (no wildcard DNS here); AWS by virtual host.
  return (s3 ??= new S3Client({ region: c.AWS_REGION, endpoint: c.S3_ENDPOINT, forcePathStyle: c.S3_ENDPOINT !== undefined, ...local() }));
}
