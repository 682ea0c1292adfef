import type { CreditSettlement, InvoiceRecord, InvoiceStatus } from '../../domain/invoice-record';
import type { InvoiceJob } from '../messages';
import type { IdPage } from './usage';

/** Invoices, invoice runs and the invoice job queue (the provider itself: ../invoicing/billing-provider.ts). lib/adapters implements it on AWS. */

export type CreateInvoicesOutcome = 'created' | 'exists' | 'moved';

export interface InvoiceRepository {
  get(customerId: string, key: string): Promise<InvoiceRecord | undefined>;
  /** Every invoice record of the customer, newest first. */
  list(customerId: string): Promise<InvoiceRecord[]>;
  /**
   * Stores a period's new invoices, moves the baselines of the earlier periods they correct and
   * marks the credits they use, atomically. 'exists': the period's own invoice is there already
   * (another attempt made it); 'moved': a baseline or credit changed since it was read.
   */
  create(
    records: InvoiceRecord[],
    baselines: { customerId: string; period: string; quantities: Record<string, string>; version: number }[],
    credits: { customerId: string; key: string; appliedTo: string }[],
  ): Promise<CreateInvoicesOutcome>;
  /** Settles a carried credit that is still open (neither applied nor settled); false otherwise. */
  settleCredit(customerId: string, key: string, settlement: CreditSettlement): Promise<boolean>;
  /** Applies `changes` if the stored status is still `expected` and returns the record as stored; undefined otherwise. */
  update(customerId: string, key: string, expected: InvoiceStatus, changes: Partial<InvoiceRecord>): Promise<InvoiceRecord | undefined>;
}

/** waiting: invoiced, but recorded without a Stripe customer (not_synced); the next job or run of the period sends it once one is linked. */
export type RunMemberStatus = 'pending' | 'done' | 'skipped' | 'failed' | 'waiting';

export interface InvoiceRun {
  period: string;
  total: number;
  done: number;
  skipped: number;
  failed: number;
  waiting: number;
  /** Correction lines of earlier periods that the run's invoices carried. */
  corrections: number;
  startedAt: string;
  /** Every member has been added and enqueued (until then the counts are still growing). */
  fannedOut?: boolean;
}

/**
 * Where a run's fan-out stands: the page that the one step message holding `token` reads next.
 * Each step reads one page and hands the next to a new step with a new token; a step message whose
 * token is not the position's (a duplicate, a redelivery after the position moved, a step of a
 * chain that a new start replaced) stops.
 */
export interface FanOutPosition {
  token: string;
  /** The token of the step that sent this one (absent for a chain's first step). */
  after?: string;
  /** The chain: `<run period>:<token of its first step>`; members it takes carry it. */
  chain: string;
  /** `customers`, then `usage:<period>` for the period and the ones before it the run may correct. */
  source: string;
  /** Where the source continues; absent at its start. */
  cursor?: string;
  /** Pages read before this one in this chain. */
  page: number;
  /**
   * The page as the step's first attempt read it: every later attempt takes the same customers
   * (the table may have changed in between), so none that an attempt took is left without a job.
   */
  pinned?: IdPage;
}

/** How a fan-out step takes customers into a run (see InvoiceRunRepository.takeMembers). */
export interface MemberTake {
  chain: string;
  step: string;
  /** A member that exists gets another job if its status is one of these and no step of this chain took it yet ... */
  again: RunMemberStatus[];
  /** ... and, when given, only if the chain that took it last starts with this. */
  againIfTakenBy?: string;
}

export interface InvoiceRunRepository {
  get(period: string): Promise<InvoiceRun | undefined>;
  /** Whether the period's run was ever started (one read, unlike `get`, which counts the members). */
  exists(period: string): Promise<boolean>;
  /**
   * Creates the run if it does not exist and (re)starts its fan-out at `position`, not fanned out:
   * a chain that was still under way finds its token replaced and stops.
   */
  beginFanOut(period: string, now: string, position: FanOutPosition): Promise<void>;
  /** The fan-out position (one read); undefined once the run has fanned out. */
  fanOutPosition(period: string): Promise<FanOutPosition | undefined>;
  /**
   * Pins the page the step holding `token` reads, unless an attempt of that step pinned one first;
   * returns the pinned page, or undefined if the position is not that step's any more.
   */
  pinFanOutPage(period: string, token: string, page: IdPage): Promise<IdPage | undefined>;
  /** Moves the position from the step holding `token` to `next`; false if it was not that step's any more. */
  advanceFanOut(period: string, token: string, next: FanOutPosition): Promise<boolean>;
  /** The last step: the run has fanned out. False if the position was not that step's any more. */
  endFanOut(period: string, token: string): Promise<boolean>;
  /**
   * Takes customers into the run for a fan-out step, each at most once per chain; returns those
   * whose job the step must enqueue: customers that were no members yet, or were taken by this
   * very step (a step done again after a crash), or that `take.again` lets be asked again. A failed
   * member taken again is pending again, so that the run is not completed while its job runs.
   */
  takeMembers(period: string, customerIds: string[], take: MemberTake): Promise<string[]>;
  /**
   * Moves a pending (failed, or waiting) member to its final status; a final status never changes.
   * `error` says why it failed; `corrections`, how many correction lines its invoices carried.
   */
  finish(period: string, customerId: string, status: Exclude<RunMemberStatus, 'pending'>, error?: string, corrections?: number): Promise<void>;
}

/**
 * One customer's invoice, or a step of a run's fan-out (`start_run`): `token` is the step's, `after`
 * the token of the step that sent it. Without a token it starts the fan-out (messages sent before
 * fan-outs were chains of steps).
 */
export interface InvoiceJobQueue {
  enqueue(jobs: InvoiceJob[]): Promise<void>;
}
