import { SNSClient } from '@aws-sdk/client-sns';
import { config } from '../config';
import { localCredentials } from './local';

let sns: SNSClient | undefined;

/** The function instance's SNS client. */
export function snsClient(): SNSClient {
  const c = config();
  return (sns ??= new SNSClient({ region: c.AWS_REGION, endpoint: c.SNS_ENDPOINT, ...localCredentials() }));
}
