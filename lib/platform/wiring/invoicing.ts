import { DynamoInvoiceRuns, DynamoInvoices } from '../../adapters/dynamo/invoices';
import { SqsJsonQueue } from '../../adapters/sqs/json-queue';
import type { InvoiceJob } from '../../app/messages';
import { dynamoClient } from '../clients/dynamo';
import { sqsClient } from '../clients/sqs';
import { area } from './base';

/** Invoice records alone (what the customers API reads before it changes a customer's Stripe link). */
export const invoiceRecordsArea = area((r) => ({ invoices: new DynamoInvoices(dynamoClient(), r.config.INVOICES_TABLE) }));

/** Invoice records, invoice runs and the invoice queue (Stripe is ./stripe, the worker's alone). */
export const invoicingArea = area((r) => {
  const c = r.config;
  return {
    invoices: invoiceRecordsArea().invoices,
    runs: new DynamoInvoiceRuns(dynamoClient(), c.INVOICES_TABLE),
    invoiceJobs: new SqsJsonQueue<InvoiceJob>(sqsClient(), c.INVOICE_QUEUE_URL),
  };
});
