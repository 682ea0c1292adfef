import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { gunzipSync, gzipSync } from 'node:zlib';
import { archivePrefix, fromNdjson, toNdjson, type ArchiveGroup, type ArchivedEvent } from '../../domain/archive';
import type { EventArchive } from '../../app/ports';

/**
 * The event archive on S3: one gzipped NDJSON object per (message, customer, period) group at
 * `events/<customerId>/<YYYY-MM>/<batchId>-<n>.ndjson.gz`. gzip output of the same bytes is the
 * same bytes (no timestamp in the header), so a redelivered message rewrites an identical object.
 */
export class S3EventArchive implements EventArchive {
  constructor(
    private readonly s3: S3Client,
    readonly bucket: string,
  ) {}

  async put(group: ArchiveGroup): Promise<void> {
    await this.s3.send(
      new PutObjectCommand({
        Bucket: this.bucket,
        Key: group.key,
        Body: gzipSync(Buffer.from(toNdjson(group.events), 'utf8')),
        ContentType: 'application/x-ndjson',
        ContentEncoding: 'gzip',
      }),
    );
  }

  async list(customerId: string, period: string, startAfter?: string, limit = 1000): Promise<{ keys: string[]; next?: string }> {
    const out = await this.s3.send(
      new ListObjectsV2Command({ Bucket: this.bucket, Prefix: archivePrefix(customerId, period), StartAfter: startAfter, MaxKeys: limit }),
    );
    const keys = (out.Contents ?? []).map((o) => o.Key!).filter(Boolean);
    return { keys, next: out.IsTruncated ? keys[keys.length - 1] : undefined };
  }

  async read(key: string): Promise<ArchivedEvent[]> {
    const out = await this.s3.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
    const bytes = Buffer.from(await out.Body!.transformToByteArray());
    // S3 may hand back the stored gzip bytes or, with Content-Encoding honoured on the way, plain text.
    const text = bytes[0] === 0x1f && bytes[1] === 0x8b ? gunzipSync(bytes).toString('utf8') : bytes.toString('utf8');
    return fromNdjson(text);
  }
}
