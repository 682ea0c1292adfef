/**
 * A customer's plan over time: a plan change takes effect from the next period, so the
 * current period is billed entirely on the plan it started with. Entries are sorted by `from`
 * (YYYY-MM); the first entry also covers usage recorded before the customer was created.
 */
export interface PlanChange {
  from: string;
  planId: string;
}

export function planIdFor(schedule: PlanChange[] | undefined, period: string): string | undefined {
  if (!schedule?.length) return undefined;
  let current = schedule[0]!.planId;
  for (const change of schedule) if (change.from <= period) current = change.planId;
  return current;
}

/**
 * The schedule after asking for `planId` while `currentPeriod` runs. In the period the customer was
 * created in (`createdPeriod`) nothing has been invoiced on its plan yet: the change replaces the
 * plan from creation (a plan set by mistake is corrected for that month too).
 */
export function schedulePlan(
  schedule: PlanChange[] | undefined,
  planId: string,
  currentPeriod: string,
  nextPeriod: string,
  createdPeriod?: string,
): PlanChange[] {
  if (!schedule?.length || createdPeriod === currentPeriod) return [{ from: currentPeriod, planId }];
  if (planIdFor(schedule, currentPeriod) === planId) return schedule.filter((c) => c.from <= currentPeriod);
  return [...schedule.filter((c) => c.from <= currentPeriod), { from: nextPeriod, planId }];
}
