import { SQSClient } from '@aws-sdk/client-sqs';
import { config } from '../config';
import { localCredentials } from './local';

let sqs: SQSClient | undefined;

/** The function instance's SQS client. fauxqs finds queues by their exact URL, so it must not rewrite it. */
export function sqsClient(): SQSClient {
  const c = config();
  return (sqs ??= new SQSClient({ region: c.AWS_REGION, endpoint: c.SQS_ENDPOINT, useQueueUrlAsEndpoint: false, ...localCredentials() }));
}
