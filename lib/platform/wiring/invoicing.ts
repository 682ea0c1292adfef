import { DynamoInvoiceRuns, DynamoInvoices } from '../../adapters/dynamo/invoices';
import { SqsJsonQueue } from '../../adapters/sqs/json-queue';
import type { InvoiceJob } from '../../app/ports';
import { dynamoClient } from '../clients/dynamo';
import { sqsClient } from '../clients/sqs';
import { area } from './base';

/** Invoice records, invoice runs and the invoice queue (Stripe is ./stripe, the worker's alone). */
export const invoicingArea = area((r) => {
  const c = r.config;
  return {
    invoices: new DynamoInvoices(dynamoClient(), c.INVOICES_TABLE),
    runs: new DynamoInvoiceRuns(dynamoClient(), c.INVOICES_TABLE),
    invoiceJobs: new SqsJsonQueue<InvoiceJob>(sqsClient(), c.INVOICE_QUEUE_URL),
  };
});
