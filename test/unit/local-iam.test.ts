import {
  BatchExecuteStatementCommand,
  BatchGetItemCommand,
  DynamoDBClient,
  GetItemCommand,
  QueryCommand,
  TransactWriteItemsCommand,
} from '@aws-sdk/client-dynamodb';
import { loadDeployment } from '../../local/runtime/deployment';
import { allows, asFunction, enforceRoles, requiredGrants, roleOf } from '../../local/runtime/iam';
import type { Provisioned } from '../../local/runtime/provision';

/** IAM on the local stack: each function's requests are checked against its role in serverless.yml. */
const names = {
  queue: (url: string) => ({ 'http://q/UsageQueue': 'UsageQueue' })[url] ?? url,
  topic: (arn: string) => (arn.startsWith('arn:t') ? `AlertsTopic${arn.slice('arn:t'.length)}` : arn),
  bucket: (b: string) => (b === 'archive-bucket' ? 'ArchiveBucket' : b),
};

describe('what a request needs', () => {
  it('names the action and resource IAM checks, one per table, item or statement', () => {
    expect(requiredGrants('dynamodb', 'QueryCommand', { TableName: 'UsageTable', IndexName: 'byPeriod' }, names)).toEqual([
      { action: 'dynamodb:Query', resource: 'UsageTable/index/byPeriod' },
    ]);
    expect(requiredGrants('dynamodb', 'BatchGetItemCommand', { RequestItems: { CustomersTable: {}, UsageTable: {} } }, names)).toEqual([
      { action: 'dynamodb:BatchGetItem', resource: 'CustomersTable' },
      { action: 'dynamodb:BatchGetItem', resource: 'UsageTable' },
    ]);
    // A transaction is checked item by item, as the write each item is.
    expect(
      requiredGrants(
        'dynamodb',
        'TransactWriteItemsCommand',
        { TransactItems: [{ Put: { TableName: 'DedupeTable' } }, { Update: { TableName: 'UsageTable' } }] },
        names,
      ),
    ).toEqual([
      { action: 'dynamodb:PutItem', resource: 'DedupeTable' },
      { action: 'dynamodb:UpdateItem', resource: 'UsageTable' },
    ]);
    expect(
      requiredGrants('dynamodb', 'BatchExecuteStatementCommand', { Statements: [{ Statement: `INSERT INTO "DedupeTable" VALUE {'pk': ?}` }] }, names),
    ).toEqual([{ action: 'dynamodb:PartiQLInsert', resource: 'DedupeTable' }]);
    expect(requiredGrants('s3', 'PutObjectCommand', { Bucket: 'archive-bucket', Key: 'events/c/2026-11/x.json.gz' }, names)).toEqual([
      { action: 's3:PutObject', resource: 'ArchiveBucket/events/c/2026-11/x.json.gz' },
    ]);
    expect(requiredGrants('s3', 'ListObjectsV2Command', { Bucket: 'archive-bucket' }, names)).toEqual([{ action: 's3:ListBucket', resource: 'ArchiveBucket' }]);
    expect(requiredGrants('sqs', 'SendMessageBatchCommand', { QueueUrl: 'http://q/UsageQueue' }, names)).toEqual([
      { action: 'sqs:SendMessage', resource: 'UsageQueue' },
    ]);
    expect(requiredGrants('sns', 'UnsubscribeCommand', { SubscriptionArn: 'arn:t:sub-1' }, names)).toEqual([
      { action: 'sns:Unsubscribe', resource: 'AlertsTopic:sub-1' },
    ]);
  });

  it("reads each function's role from serverless.yml, references and wildcards included", () => {
    const fns = loadDeployment().functions;
    const role = (name: string) => roleOf(fns.find((f) => f.name === name)! as Parameters<typeof roleOf>[0]);
    expect(allows(role('invoiceWorker'), { action: 'dynamodb:Query', resource: 'UsageTable/index/byPeriod' })).toBe(true);
    expect(allows(role('aggregate'), { action: 's3:PutObject', resource: 'ArchiveBucket/events/c/2026-11/x.json.gz' })).toBe(true);
    expect(allows(role('aggregate'), { action: 's3:PutObject', resource: 'ArchiveBucket/other/x' })).toBe(false);
    expect(allows(role('ingest'), { action: 'dynamodb:Query', resource: 'UsageTable' })).toBe(false);
  });
});

describe('a function calling outside its role', () => {
  const client = new DynamoDBClient({
    region: 'us-east-1',
    endpoint: 'http://127.0.0.1:9',
    maxAttempts: 1,
    credentials: { accessKeyId: 'a', secretAccessKey: 'b' },
  });
  const resources: Provisioned = { tables: {}, queues: {}, topics: {}, buckets: {} };
  enforceRoles(loadDeployment(), resources, { dynamodb: client });
  const stderr = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
  afterAll(() => stderr.mockRestore());

  it('fails with AccessDenied, as on AWS, naming the function, action and resource', async () => {
    const asUsage = asFunction('usage', () =>
      client.send(new BatchExecuteStatementCommand({ Statements: [{ Statement: `INSERT INTO "DedupeTable" VALUE {'pk': ?}` }] })),
    );
    await expect(asUsage()).rejects.toMatchObject({
      name: 'AccessDeniedException',
      message: expect.stringContaining('function usage is not authorized to perform dynamodb:PartiQLInsert on resource DedupeTable'),
    });
    expect(stderr).toHaveBeenCalledWith(expect.stringContaining('local IAM: the role of function usage'));
  });

  it('lets an allowed request through, and does not check requests sent outside an invocation', async () => {
    // Allowed: the request goes on to the (closed) port, so the error is a network one.
    const asUsage = asFunction('usage', () =>
      client.send(new BatchGetItemCommand({ RequestItems: { CustomersTable: { Keys: [] }, UsageTable: { Keys: [] } } })),
    );
    await expect(asUsage()).rejects.not.toMatchObject({ name: 'AccessDeniedException' });
    await expect(client.send(new GetItemCommand({ TableName: 'ApiKeysTable', Key: {} }))).rejects.not.toMatchObject({ name: 'AccessDeniedException' });
    const asIngest = asFunction('ingest', () => client.send(new QueryCommand({ TableName: 'UsageTable' })));
    await expect(asIngest()).rejects.toMatchObject({ name: 'AccessDeniedException' });
    const asAggregate = asFunction('aggregate', () =>
      client.send(
        new TransactWriteItemsCommand({ TransactItems: [{ Put: { TableName: 'DedupeTable', Item: {} } }, { Delete: { TableName: 'UsageTable', Key: {} } }] }),
      ),
    );
    await expect(asAggregate()).rejects.toMatchObject({ message: expect.stringContaining('dynamodb:DeleteItem on resource UsageTable') });
  });
});
