import { DynamoApiKeys } from '../../adapters/dynamo/entities';
import { dynamoClient } from '../clients/dynamo';
import { area } from './base';

/** API keys: every authenticated request reads one; the api-keys functions manage them. */
export const authArea = area((r) => ({ apiKeys: new DynamoApiKeys(dynamoClient(), r.config.API_KEYS_TABLE) }));
