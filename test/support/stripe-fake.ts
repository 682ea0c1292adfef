import { startStripeFake, type StripeFake } from '../../local/stripe-fake/server';

/** The Stripe fake for a test file: started before its tests, reset before each one, stopped after; `use` receives it. */
export function useStripeFake(use: (fake: StripeFake) => void): void {
  let fake: StripeFake | undefined;
  beforeAll(async () => {
    fake = await startStripeFake({ port: 0 });
    use(fake);
  });
  afterAll(async () => {
    await fake?.stop();
  });
  beforeEach(() => {
    fake!.reset();
  });
}
