/**
 * AWS clients, created once per function instance, one module per service: a function's bundle
 * loads only the SDK clients it imports (they are external to the bundle and `require`d at start-up,
 * used or not). Function code imports the one it needs (`lib/platform/clients/dynamo.ts`); this index is for the
 * tests and the local tools, which use several.
 */
export { dynamoClient } from './dynamo';
export { s3Client } from './s3';
export { snsClient } from './sns';
export { sqsClient } from './sqs';
