import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';

/**
 * Makes `dynamo` (the handlers' client) crash on the n-th call of a command (counting from 1), once,
 * with a middleware named `fault` (tests remove it after each test). `crashed` tells whether it did.
 */
export function crashOn(dynamo: DynamoDBClient, commandName: string, nth: number): { crashed: boolean } {
  let calls = 0;
  const state = { crashed: false };
  dynamo.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName === commandName && !state.crashed && ++calls === nth) {
        state.crashed = true;
        throw Object.assign(new Error(`injected crash in ${commandName}`), { name: 'InjectedCrash' });
      }
      return next(args);
    },
    { step: 'initialize', name: 'fault' },
  );
  return state;
}

/**
 * Records the name of every command `dynamo` (the handlers' client) sends while `during` runs, with
 * a middleware named `watch`: what a read path costs in requests.
 */
export async function commandsDuring(dynamo: DynamoDBClient, during: () => Promise<unknown>): Promise<string[]> {
  const sent: string[] = [];
  dynamo.middlewareStack.add(
    (next, context) => async (args) => {
      sent.push(context.commandName!);
      return next(args);
    },
    { step: 'initialize', name: 'watch' },
  );
  try {
    await during();
  } finally {
    dynamo.middlewareStack.remove('watch');
  }
  return sent;
}
