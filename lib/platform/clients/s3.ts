import { S3Client } from '@aws-sdk/client-s3';
import { config } from '../config';
import { localCredentials } from './local';

let s3: S3Client | undefined;

/** The function instance's S3 client. The emulator serves buckets by path (no wildcard DNS here); AWS by virtual host. */
export function s3Client(): S3Client {
  const c = config();
  return (s3 ??= new S3Client({ region: c.AWS_REGION, endpoint: c.S3_ENDPOINT, forcePathStyle: c.S3_ENDPOINT !== undefined, ...localCredentials() }));
}
