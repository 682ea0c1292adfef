/** The time, as the use cases read it (tests move it). lib/adapters implements it on AWS. */

export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };
