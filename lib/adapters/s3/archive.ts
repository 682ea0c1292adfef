import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { gunzipSync, gzipSync } from 'node:zlib';
import { archivePrefix, fromNdjson, groupKeyPrefix, toNdjson, type ArchiveGroup, type ArchivedEvent } from '../../domain/archive';
import type { EventArchive } from '../../app/ports/usage';
import { mapLimit } from '../../domain/concurrency';

/**
 * The event archive on S3: one gzipped NDJSON object per (message, customer, period) group at
 * `events/<customerId>/<YYYY-MM>/<batchId>-<n>~<meters>.ndjson.gz`. gzip output of the same bytes is the
 * same bytes (no timestamp in the header), so a redelivered message rewrites an identical object.
 */
/** Objects written by this process (benchmarks report S3 PUTs per event from it). */
export const archiveWrites = { puts: 0, events: 0 };

export class S3EventArchive implements EventArchive {
  constructor(
    private readonly s3: S3Client,
    readonly bucket: string,
  ) {}

  /**
   * Writes a group's object only where none is (`If-None-Match: *`): no code path can replace
   * events that were counted. A redelivered message finds its own object there; it is accepted only
   * if it holds exactly the same events, else the message fails (and goes to the DLQ): two
   * different contents for one batch and group is a defect to look at, not something to overwrite.
   */
  async put(group: ArchiveGroup): Promise<void> {
    const text = toNdjson(group.events);
    try {
      await this.s3.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: group.key,
          Body: gzipSync(Buffer.from(text, 'utf8')),
          ContentType: 'application/x-ndjson',
          ContentEncoding: 'gzip',
          IfNoneMatch: '*',
        }),
      );
    } catch (err) {
      if (!isPreconditionFailed(err)) throw err;
      if (toNdjson(await this.read(group.key)) !== text) {
        throw new Error(`archive object ${group.key} exists with other events: refusing to overwrite counted events`);
      }
      return;
    }
    archiveWrites.puts++;
    archiveWrites.events += group.events.length;
  }

  async list(customerId: string, period: string, startAfter?: string, limit = 1000): Promise<{ keys: string[]; next?: string }> {
    const out = await this.s3.send(
      new ListObjectsV2Command({ Bucket: this.bucket, Prefix: archivePrefix(customerId, period), StartAfter: startAfter, MaxKeys: limit }),
    );
    const keys = (out.Contents ?? []).map((o) => o.Key!).filter(Boolean);
    return { keys, next: out.IsTruncated ? keys[keys.length - 1] : undefined };
  }

  async groupObject(customerId: string, period: string, batchId: string, group: number): Promise<string | undefined> {
    const prefix = groupKeyPrefix(customerId, period, batchId, group);
    const out = await this.s3.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, MaxKeys: 20 }));
    // `<batchId>-1` is also the start of `<batchId>-10...`: the group's own key goes on with `~` (or `.`, written before keys named meters).
    return (out.Contents ?? []).map((o) => o.Key!).find((k) => k[prefix.length] === '~' || k[prefix.length] === '.');
  }

  async customers(period: string): Promise<string[]> {
    const ids: string[] = [];
    let token: string | undefined;
    do {
      const out = await this.s3.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: 'events/', Delimiter: '/', ContinuationToken: token }));
      ids.push(...(out.CommonPrefixes ?? []).map((p) => p.Prefix!.slice('events/'.length, -1)));
      token = out.IsTruncated ? out.NextContinuationToken : undefined;
    } while (token !== undefined);
    const withPeriod = await mapLimit(ids, 16, async (id) => (await this.list(id, period, undefined, 1)).keys.length > 0);
    return ids.filter((_, i) => withPeriod[i]);
  }

  async read(key: string): Promise<ArchivedEvent[]> {
    const out = await this.s3.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
    const bytes = Buffer.from(await out.Body!.transformToByteArray());
    // S3 may hand back the stored gzip bytes or, with Content-Encoding honoured on the way, plain text.
    const text = bytes[0] === 0x1f && bytes[1] === 0x8b ? gunzipSync(bytes).toString('utf8') : bytes.toString('utf8');
    return fromNdjson(text);
  }
}

/** S3 answers 412 PreconditionFailed to a conditional write whose condition did not hold (or 409 while another such write is in flight). */
function isPreconditionFailed(err: unknown): boolean {
  const e = err as { name?: string; Code?: string; $metadata?: { httpStatusCode?: number } };
  return e?.name === 'PreconditionFailed' || e?.Code === 'PreconditionFailed' || e?.$metadata?.httpStatusCode === 412;
}
