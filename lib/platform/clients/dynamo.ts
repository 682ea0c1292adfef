import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { config } from '../config';
import { localCredentials } from './local';

let dynamo: DynamoDBClient | undefined;

/** The function instance's DynamoDB client (DynamoDB Local on the local stack). */
export function dynamoClient(): DynamoDBClient {
  const c = config();
  return (dynamo ??= new DynamoDBClient({ region: c.AWS_REGION, endpoint: c.DYNAMODB_ENDPOINT, maxAttempts: 8, ...localCredentials() }));
}
