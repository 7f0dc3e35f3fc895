/**
 * One use per DPoP proof and per client assertion, also under concurrency.
 *
 * oidc-provider checks a proof's (or an assertion's) `jti` with `ReplayDetection.unique(iss, jti, exp)`, which finds
 * the record and, when there is none, saves it: a read, then a write. Requests that carry the same proof at the same
 * moment all read "none" before any has written, and all pass. Here `unique` stores the record with the operational
 * adapter's `insertIfAbsent` instead, one atomic insert-if-absent (stores/sequelize/operational-adapter.ts), so exactly
 * one of them passes. The record, its id and its lifetime are the provider's own, and as before an expired record may
 * be used again. An adapter without `insertIfAbsent` (a custom one) keeps the provider's check.
 */
import { hash } from 'node:crypto';
import type { AdapterPayload, Provider } from 'oidc-provider';

/** An adapter that can insert a record unless a live one with its id exists (true: this call inserted it). */
interface InsertIfAbsent {
  insertIfAbsent(id: string, payload: AdapterPayload, expiresIn: number): Promise<boolean>;
}

/** What this module uses of the provider's ReplayDetection model (not all of it is in oidc-provider's types). */
interface ReplayDetectionModel {
  readonly adapter: Partial<InsertIfAbsent>;
  unique(iss: string, jti: string, exp: number): Promise<boolean>;
  instantiate(payload: { jti: string; iss: string }): ReplayRecord;
}

interface ReplayRecord {
  exp?: number;
  getValueAndPayload(): Promise<{ payload: AdapterPayload }>;
  emit(event: 'saved'): void;
}

const epochTime = () => Math.floor(Date.now() / 1000);

/** Replaces `provider.ReplayDetection.unique` with the atomic check (kept as it is for adapters that cannot). */
export function useAtomicReplayDetection(provider: Provider): void {
  const model = provider.ReplayDetection as unknown as ReplayDetectionModel;
  const providerUnique = model.unique.bind(model);
  model.unique = async (iss, jti, exp) => {
    const adapter = model.adapter;
    if (typeof adapter.insertIfAbsent !== 'function') return providerUnique(iss, jti, exp);
    // As the provider does: the record's id is a hash of issuer and jti, its lifetime ends at `exp`.
    const id = hash('sha256', `${iss}${jti}`, 'base64url');
    const record = model.instantiate({ jti: id, iss });
    record.exp = exp;
    const { payload } = await record.getValueAndPayload();
    const inserted = await adapter.insertIfAbsent(id, payload, exp - epochTime());
    if (inserted) record.emit('saved');
    return inserted;
  };
}
