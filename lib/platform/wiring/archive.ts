import { S3EventArchive } from '../../adapters/s3/archive';
import { s3Client } from '../clients/s3';
import { area } from './base';

/** The event archive in S3: written by the aggregator, read by the event listing, voids and reconciliation. */
export const archiveArea = area((r) => ({ archive: new S3EventArchive(s3Client(), r.config.ARCHIVE_BUCKET) }));
