import { apiKeyInput, apiKeyPatch, createApiKey, updateApiKey } from '../../lib/app/apikeys';
import { authenticate } from '../../lib/app/auth';
import type { ApiKeyRepository } from '../../lib/app/ports/access';
import { authorize, bearerToken, generateApiKey, hashSecret, parseApiKey, type ApiKeyRecord } from '../../lib/domain/apikey';
import { ConflictError, ForbiddenError, NotFoundError, UnauthorizedError, UnavailableError, ValidationError } from '../../lib/domain/errors';
import { toHttpError } from '../../lib/platform/http';

describe('API keys', () => {
  it('generates keys that parse back and hashes that are not the secret', () => {
    const k = generateApiKey();
    expect(parseApiKey(k.plain)).toEqual({ keyId: k.keyId, secret: k.secret });
    expect(hashSecret(k.secret)).toMatch(/^[0-9a-f]{64}$/);
    expect(hashSecret(k.secret)).not.toContain(k.secret);
    expect(generateApiKey().plain).not.toBe(k.plain);
    expect(parseApiKey('mk_short_x')).toBeUndefined();
  });

  const repo = (records: ApiKeyRecord[]): ApiKeyRepository => ({
    get: async (id) => records.find((r) => r.keyId === id),
    create: async () => undefined,
    revoke: async () => true,
    setLimits: async () => true,
    list: async () => records,
  });

  it('authenticates a valid key and refuses wrong secrets, revoked keys and other schemes with 401', async () => {
    const k = generateApiKey();
    const record: ApiKeyRecord = { keyId: k.keyId, secretHash: hashSecret(k.secret), name: 'n', scopes: ['read'], customerId: 'cus_1', createdAt: '' };
    await expect(authenticate({ apiKeys: repo([record]) }, `Bearer ${k.plain}`)).resolves.toEqual({ keyId: k.keyId, scopes: ['read'], customerId: 'cus_1' });
    const wrong = `mk_${k.keyId}_${'A'.repeat(43)}`;
    await expect(authenticate({ apiKeys: repo([record]) }, `Bearer ${wrong}`)).rejects.toBeInstanceOf(UnauthorizedError);
    await expect(authenticate({ apiKeys: repo([{ ...record, revokedAt: 'x' }]) }, `Bearer ${k.plain}`)).rejects.toBeInstanceOf(UnauthorizedError);
    await expect(authenticate({ apiKeys: repo([record]) }, `Basic ${k.plain}`)).rejects.toBeInstanceOf(UnauthorizedError);
    await expect(authenticate({ apiKeys: repo([record]) }, undefined)).rejects.toBeInstanceOf(UnauthorizedError);
  });

  it.each([
    ['Bearer abc', 'abc'],
    ['bearer \t abc \t', 'abc'],
    ['BEARER abc', 'abc'],
    ['Bearer\u00a0abc', undefined],
    ['Bearer \u00a0abc', undefined],
    ['Bearer abc\u00a0', undefined],
    ['Bearer\u2003abc', undefined],
    ['Bearer \u3000abc', undefined],
    ['Bearer\nabc', undefined],
    ['Bearer abc def', undefined],
    ['Bearer', undefined],
    ['Bearerabc', undefined],
  ])('reads the token of %j as %j: only SP and HTAB separate "Bearer" and the token', (header, token) => {
    expect(bearerToken(header)).toBe(token);
  });

  it('accepts the local admin key only when configured (stage local)', async () => {
    await expect(authenticate({ apiKeys: repo([]), localAdminKey: 'local-admin-key' }, 'Bearer local-admin-key')).resolves.toMatchObject({
      scopes: ['ingest', 'read', 'admin'],
    });
    await expect(authenticate({ apiKeys: repo([]) }, 'Bearer local-admin-key')).rejects.toBeInstanceOf(UnauthorizedError);
  });

  it('checks scopes (admin implies all) and customer binding with 403', () => {
    expect(() => authorize({ keyId: 'k', scopes: ['read'] }, 'ingest')).toThrow(ForbiddenError);
    expect(() => authorize({ keyId: 'k', scopes: ['admin'] }, 'ingest')).not.toThrow();
    expect(() => authorize({ keyId: 'k', scopes: ['read'], customerId: 'a' }, 'read', 'b')).toThrow(/bound to another customer/);
    expect(() => authorize({ keyId: 'k', scopes: ['read'], customerId: 'a' }, 'read', 'a')).not.toThrow();
  });
});

describe('creating API keys', () => {
  const admin = { keyId: 'op', scopes: ['admin' as const] };
  const created: ApiKeyRecord[] = [];
  const deps = {
    apiKeys: { ...repo(created), create: async (r: ApiKeyRecord) => void created.push(r) },
    clock: { now: () => new Date('2026-11-23T00:00:00Z') },
    defaultLimits: { requestsPerSecond: 500, eventsPerMinute: 3_000_000 },
  };
  function repo(records: ApiKeyRecord[]): ApiKeyRepository {
    return {
      get: async (id) => records.find((r) => r.keyId === id),
      create: async () => undefined,
      revoke: async () => true,
      setLimits: async (id, limits) => {
        const r = records.find((k) => k.keyId === id);
        if (r) r.limits = limits;
        return r !== undefined;
      },
      list: async () => records,
    };
  }

  it('refuses an admin key bound to a customer: it could never use an admin endpoint', async () => {
    const refused = createApiKey(deps, admin, apiKeyInput.parse({ name: 'x', scopes: ['read', 'admin'], customerId: 'cus_42' }));
    await expect(refused).rejects.toBeInstanceOf(ValidationError);
    await expect(refused).rejects.toMatchObject({
      code: 'admin_key_bound',
      message: expect.stringMatching(/bound to a customer.*never use an admin endpoint/),
      details: [expect.objectContaining({ field: 'scopes', code: 'admin_key_bound' })],
    });
    expect(created).toEqual([]);
  });

  it('creates bound keys without admin and admin keys without a customer', async () => {
    await expect(createApiKey(deps, admin, apiKeyInput.parse({ name: 'r', scopes: ['read', 'ingest'], customerId: 'cus_42' }))).resolves.toMatchObject({
      customerId: 'cus_42',
    });
    await expect(createApiKey(deps, admin, apiKeyInput.parse({ name: 'a', scopes: ['admin'] }))).resolves.toMatchObject({ customerId: null });
    expect(created).toHaveLength(2);
  });

  it('gives a key its own limits, shows them beside the defaults, and changes or resets them one by one', async () => {
    const k = await createApiKey(deps, admin, apiKeyInput.parse({ name: 'slow', scopes: ['ingest'], limits: { requestsPerSecond: 5 } }));
    expect(k).toMatchObject({ limits: { requestsPerSecond: 5, eventsPerMinute: 3_000_000 }, customLimits: { requestsPerSecond: 5 } });
    const changed = await updateApiKey(deps, admin, k.keyId, apiKeyPatch.parse({ limits: { eventsPerMinute: 2000 } }));
    expect(changed).toMatchObject({ limits: { requestsPerSecond: 5, eventsPerMinute: 2000 }, customLimits: { requestsPerSecond: 5, eventsPerMinute: 2000 } });
    const reset = await updateApiKey(deps, admin, k.keyId, apiKeyPatch.parse({ limits: { requestsPerSecond: null } }));
    expect(reset).toMatchObject({ limits: { requestsPerSecond: 500, eventsPerMinute: 2000 }, customLimits: { eventsPerMinute: 2000 } });
    expect(created.find((r) => r.keyId === k.keyId)!.limits).toEqual({ eventsPerMinute: 2000 });
    await expect(updateApiKey(deps, admin, 'abcdefghijkl', apiKeyPatch.parse({ limits: {} }))).rejects.toMatchObject({ code: 'api_key_not_found' });
    await expect(updateApiKey(deps, { ...admin, customerId: 'cus_1' }, k.keyId, apiKeyPatch.parse({ limits: {} }))).rejects.toMatchObject({
      code: 'customer_forbidden',
    });
  });

  it.each([
    [{ requestsPerSecond: 0 }, 'limits.requestsPerSecond'],
    [{ requestsPerSecond: 1001 }, 'limits.requestsPerSecond'],
    [{ requestsPerSecond: 1.5 }, 'limits.requestsPerSecond'],
    [{ eventsPerMinute: 999 }, 'limits.eventsPerMinute'],
    [{ eventsPerMinute: 60_000_001 }, 'limits.eventsPerMinute'],
    [{ eventsPerMinute: '5000' }, 'limits.eventsPerMinute'],
    [{ burst: 5 }, 'limits'],
  ])('refuses the limits %j, naming %s', (limits, field) => {
    const result = apiKeyInput.safeParse({ name: 'x', scopes: ['read'], limits });
    expect(result.success).toBe(false);
    expect(result.error!.issues.map((i) => i.path.join('.'))).toContain(field);
  });
});

describe('error mapping', () => {
  it('maps domain errors to their status with code, message and details', () => {
    expect(toHttpError(new ValidationError('bad', 'Bad thing', [{ index: 1, code: 'x', message: 'y' }]), 'r1')).toEqual({
      status: 400,
      body: { error: { code: 'bad', message: 'Bad thing', details: [{ index: 1, code: 'x', message: 'y' }], requestId: 'r1' } },
    });
    expect(toHttpError(new UnauthorizedError(), 'r').status).toBe(401);
    expect(toHttpError(new ForbiddenError('f', 'm'), 'r').status).toBe(403);
    expect(toHttpError(new NotFoundError('n', 'm'), 'r').status).toBe(404);
    expect(toHttpError(new ConflictError('c', 'm'), 'r').status).toBe(409);
    expect(toHttpError(new UnavailableError('u', 'm'), 'r')).toMatchObject({ status: 503, headers: { 'retry-after': '2' } });
  });

  it('answers DynamoDB and SQS throttling with 503 and Retry-After: the same request is safe to repeat', () => {
    const throttles = [
      Object.assign(new Error('Rate exceeded'), { name: 'ProvisionedThroughputExceededException' }),
      Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' }),
      Object.assign(new Error('Request throttled'), { name: 'RequestThrottled' }),
      Object.assign(new Error('x'), { name: 'SomethingElse', $retryable: { throttling: true } }),
      Object.assign(new Error('Transaction cancelled'), {
        name: 'TransactionCanceledException',
        CancellationReasons: [{ Code: 'None' }, { Code: 'ThrottlingError' }],
      }),
    ];
    for (const err of throttles) {
      const res = toHttpError(err, 'r');
      expect(res).toMatchObject({ status: 503, headers: { 'retry-after': '2' }, body: { error: { code: 'service_busy', requestId: 'r' } } });
      expect(JSON.stringify(res.body)).not.toContain('Rate exceeded');
    }
  });

  it('keeps HTTP statuses out of the domain: a domain error carries a code, not a status', () => {
    expect(Object.keys(new ConflictError('c', 'm'))).not.toContain('status');
  });

  it('never exposes internal messages in a 500', () => {
    const res = toHttpError(new Error('ECONNREFUSED 10.0.0.1 secret table name'), 'req-9');
    expect(res.status).toBe(500);
    expect(JSON.stringify(res.body)).not.toContain('ECONNREFUSED');
    expect(res.body).toMatchObject({ error: { code: 'internal_error', requestId: 'req-9' } });
  });
});

describe('configuration at cold start', () => {
  it('fails a function at init, not per request, when its environment is malformed', () => {
    const saved = { ...process.env };
    try {
      Object.assign(process.env, {
        USAGE_TABLE: 'u',
        DEDUPE_TABLE: 'd',
        CUSTOMERS_TABLE: 'c',
        API_KEYS_TABLE: 'k',
        RATE_LIMITS_TABLE: 'r',
        INVOICES_TABLE: 'i',
        ALERTS_TABLE: 'a',
        ARCHIVE_BUCKET: 'archive',
      });
      Object.assign(process.env, { ALERTS_TOPIC_ARN: 't', INVOICE_QUEUE_URL: 'http://q', USAGE_QUEUE_URL: 'not a url', STAGE: 'prod' });
      jest.isolateModules(() => {
        expect(() => require('../../functions/usage/handler')).toThrow(/invalid configuration: USAGE_QUEUE_URL/);
      });
      process.env.USAGE_QUEUE_URL = 'http://q';
      jest.isolateModules(() => {
        // Outside the emulators the cursor secret must come from the stack.
        expect(() => require('../../functions/aggregate/handler')).toThrow(/CURSOR_SECRET is required/);
      });
    } finally {
      process.env = saved;
    }
  });
});
