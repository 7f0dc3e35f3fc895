/** What became of the back-channel logout notifications a command queued (`sessions revoke`, `users remove`). */
import type { GatehouseServer } from '../create-server.js';

export interface Delivery {
  delivered: number;
  pending: number;
  failed: number;
}

/** Outcome of the `terminated` notifications of these sessions, from the outbox. */
export async function deliveryOf(server: GatehouseServer, sessionIds: string[]): Promise<Delivery> {
  const counts = { delivered: 0, pending: 0, failed: 0 };
  for (const sessionId of sessionIds) {
    for (const row of await server.backchannel.outbox.list({ sessionId }))
      if (row.reason === 'terminated') counts[row.status]++;
  }
  return counts;
}

/** `Back-channel logout: 2 queued, 1 delivered, 1 to be retried by the server`; `pendingWill` says what awaits the pending. */
export function deliveryLine(queued: number, delivery: Delivery, pendingWill = 'to be retried'): string {
  return (
    `Back-channel logout: ${queued} queued, ${delivery.delivered} delivered` +
    (delivery.pending ? `, ${delivery.pending} ${pendingWill} by the server` : '') +
    (delivery.failed ? `, ${delivery.failed} failed` : '')
  );
}
