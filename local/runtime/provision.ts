import { CreateTableCommand, type CreateTableCommandInput, DynamoDBClient, UpdateTimeToLiveCommand } from '@aws-sdk/client-dynamodb';
import { CreateQueueCommand, GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { CreateTopicCommand, SNSClient } from '@aws-sdk/client-sns';
import { CreateBucketCommand, type S3Client } from '@aws-sdk/client-s3';
import type { CfnResource } from './deployment';

/**
 * Creates, on the emulators, what resources/*.yml declares for CloudFormation. Names are the
 * logical ids (what `!Ref` gives the functions' environment on AWS is a generated name; locally the
 * logical id plays that part).
 */
export interface Provisioned {
  tables: Record<string, string>;
  queues: Record<string, { url: string; arn: string }>;
  topics: Record<string, string>;
  buckets: Record<string, string>;
}

export interface ProvisionOptions {
  /** Locally a failed message should come back in seconds, not the deployed 180 s. */
  visibilityTimeoutSeconds?: number;
  maxReceiveCount?: number;
  /** Tables kept from an earlier run (DynamoDB Local on disk) are used as they are. */
  keepExistingTables?: boolean;
}

export async function provision(
  resources: Record<string, CfnResource>,
  clients: { dynamo: DynamoDBClient; sqs: SQSClient; sns: SNSClient; s3: S3Client },
  opts: ProvisionOptions = {},
): Promise<Provisioned> {
  const out: Provisioned = { tables: {}, queues: {}, topics: {}, buckets: {} };
  for (const [id, r] of Object.entries(resources)) {
    if (r.Type !== 'AWS::DynamoDB::Table') continue;
    // DeletionPolicy and UpdateReplacePolicy are CloudFormation's, outside Properties: nothing to
    // do here. DeletionProtectionEnabled goes through (DynamoDB Local enforces it too); point-in-time
    // recovery is an AWS backup feature DynamoDB Local does not have (UpdateContinuousBackups is
    // unknown to it), and an in-memory emulator has nothing to recover.
    const {
      TimeToLiveSpecification,
      PointInTimeRecoverySpecification: _pitr,
      ...props
    } = r.Properties as Record<string, unknown> & {
      TimeToLiveSpecification?: { AttributeName: string; Enabled: boolean };
    };
    try {
      await clients.dynamo.send(new CreateTableCommand({ ...(props as Omit<CreateTableCommandInput, 'TableName'>), TableName: id }));
    } catch (err) {
      if (!(opts.keepExistingTables && (err as { name?: string }).name === 'ResourceInUseException')) throw err;
      out.tables[id] = id;
      continue;
    }
    if (TimeToLiveSpecification) {
      await clients.dynamo.send(new UpdateTimeToLiveCommand({ TableName: id, TimeToLiveSpecification }));
    }
    out.tables[id] = id;
  }

  // Dead-letter queues first, so that redrive policies can name them.
  const queues = Object.entries(resources).filter(([, r]) => r.Type === 'AWS::SQS::Queue');
  const ordered = [...queues.filter(([, r]) => !r.Properties?.RedrivePolicy), ...queues.filter(([, r]) => r.Properties?.RedrivePolicy)];
  for (const [id, r] of ordered) {
    const p = (r.Properties ?? {}) as {
      VisibilityTimeout?: number;
      MessageRetentionPeriod?: number;
      RedrivePolicy?: { deadLetterTargetArn: { 'Fn::GetAtt': [string, string] }; maxReceiveCount: number };
    };
    const attributes: Record<string, string> = {};
    const visibility = opts.visibilityTimeoutSeconds ?? p.VisibilityTimeout;
    if (visibility !== undefined) attributes.VisibilityTimeout = String(visibility);
    if (p.MessageRetentionPeriod !== undefined) attributes.MessageRetentionPeriod = String(p.MessageRetentionPeriod);
    if (p.RedrivePolicy) {
      const dlq = out.queues[p.RedrivePolicy.deadLetterTargetArn['Fn::GetAtt'][0]];
      if (!dlq) throw new Error(`queue ${id}: its dead-letter queue is not declared`);
      attributes.RedrivePolicy = JSON.stringify({ deadLetterTargetArn: dlq.arn, maxReceiveCount: opts.maxReceiveCount ?? p.RedrivePolicy.maxReceiveCount });
    }
    const created = await clients.sqs.send(new CreateQueueCommand({ QueueName: id, Attributes: attributes }));
    const attrs = await clients.sqs.send(new GetQueueAttributesCommand({ QueueUrl: created.QueueUrl!, AttributeNames: ['QueueArn'] }));
    out.queues[id] = { url: created.QueueUrl!, arn: attrs.Attributes!.QueueArn! };
  }

  for (const [id, r] of Object.entries(resources)) {
    if (r.Type !== 'AWS::SNS::Topic') continue;
    out.topics[id] = (await clients.sns.send(new CreateTopicCommand({ Name: id }))).TopicArn!;
  }

  // Buckets are named by their lower-cased logical id (S3 names are lower case); encryption,
  // lifecycle and public-access settings are AWS's, an emulator has nothing to apply them to.
  for (const [id, r] of Object.entries(resources)) {
    if (r.Type !== 'AWS::S3::Bucket') continue;
    const name = id.toLowerCase();
    await clients.s3.send(new CreateBucketCommand({ Bucket: name }));
    out.buckets[id] = name;
  }
  return out;
}
