import { DynamoCustomers } from '../../adapters/dynamo/entities';
import { CursorCodec } from '../../domain/cursor';
import { dynamoClient } from '../clients/dynamo';
import { area } from './base';

/** Customer records and the cursors of their listing. */
export const customersArea = area((r) => ({
  customers: new DynamoCustomers(dynamoClient(), r.config.CUSTOMERS_TABLE),
  customerCursors: new CursorCodec(r.cursorSecret, 'customers'),
}));
