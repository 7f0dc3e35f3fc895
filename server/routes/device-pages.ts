/**
 * The pages of the device authorization grant (RFC 8628), served by oidc-provider at `/device` and rendered here in
 * the style of the other pages:
 *
 *   GET  /device                 the code entry page (pre-filled when opened from verification_uri_complete)
 *   POST /device  (user_code)    the confirmation page: which client, which code, from where
 *   POST /device  (confirm=yes)  then the usual login and consent pages (/interaction/:uid), which create the
 *                                server-side session as for any sign-in
 *   GET  /device/:uid            the success page; the device's next poll gets its tokens
 *
 * A wrong, expired or used code re-renders the entry page with the reason; a cancelled or failed sign-in renders the
 * error page. Wrong codes are counted per IP address (DeviceCodeThrottle); a locked address gets 429 before any
 * look-up, so guessing stops there.
 *
 * The provider answers a GET with `user_code` with a self-submitting form, which would skip the entry page; the
 * middleware below takes the code out of the query and the entry page shows it in the field instead, for the user to
 * check and submit.
 */
import type { KoaContextWithOIDC } from 'oidc-provider';
import type { Clock } from '../../stores/session-store.js';
import type { PageRenderer } from '../http/render.js';
import { displayNameOf, type AccountDirectory } from '../provider/accounts.js';
import type { CodeEntry, DeviceCodeThrottle } from '../provider/device-code-throttle.js';

/** Where the provider serves the code entry page (its `code_verification` route, set in configuration.ts). */
export const DEVICE_PATH = '/device';

export interface DevicePageDeps {
  render: PageRenderer;
  throttle: DeviceCodeThrottle;
  accounts: AccountDirectory;
  clock: Clock;
  charset: 'base-20' | 'digits';
  mask: string;
}

/** Why a code was refused, by the provider's error name; anything else goes to the error page. */
const CODE_PROBLEMS: Record<string, string> = {
  NoCodeError: 'Enter the code shown on your device.',
  NotFoundError: 'That code is not valid. Check it against your device and try again.',
  ExpiredError: 'That code has expired. Start again on your device to get a new one.',
  AlreadyUsedError: 'That code has already been used. Start again on your device to get a new one.',
};

const PREFILLED = Symbol('gatehouse.prefilledUserCode');
/** The POST's admitted code entry (DeviceCodeThrottle), through which a wrong code is counted. */
const CODE_ENTRY = Symbol('gatehouse.deviceCodeEntry');

type DeviceContext = KoaContextWithOIDC & {
  state: { [PREFILLED]?: string; [CODE_ENTRY]?: CodeEntry; requestId?: string };
};

function xsrfOf(ctx: KoaContextWithOIDC): string {
  const state = ctx.oidc.session?.state as { secret?: unknown } | undefined;
  return typeof state?.secret === 'string' ? state.secret : '';
}

function minutes(until: Date, clock: Clock): { seconds: number; text: string } {
  const seconds = Math.max(1, Math.ceil((until.getTime() - clock.now().getTime()) / 1000));
  const count = Math.ceil(seconds / 60);
  return { seconds, text: `${count} minute${count === 1 ? '' : 's'}` };
}

/** `features.deviceFlow`'s page sources. */
export function devicePageSources({ render, accounts, charset, mask }: DevicePageDeps) {
  const entryPage = (ctx: DeviceContext, page: { userCode?: string; error?: string }) =>
    render(ctx, 'device-code', {
      action: ctx.oidc.urlFor('code_verification'),
      xsrf: xsrfOf(ctx),
      userCode: page.userCode ?? ctx.state[PREFILLED] ?? '',
      placeholder: mask.replace(/\*/g, charset === 'digits' ? '0' : 'X'),
      digits: charset === 'digits',
      error: page.error,
    });

  return {
    async userCodeInputSource(
      ctx: KoaContextWithOIDC,
      _form: string,
      out?: { error?: unknown; error_description?: unknown },
      err?: Error,
    ) {
      const context = ctx as DeviceContext;
      if (!err) return entryPage(context, {});
      const problem = CODE_PROBLEMS[err.name];
      if (problem) {
        if (err.name === 'NotFoundError') await context.state[CODE_ENTRY]?.failed();
        return entryPage(context, { userCode: (err as { userCode?: string }).userCode, error: problem });
      }
      const aborted = err.name === 'AbortedError';
      render(ctx, 'device-error', {
        title: aborted ? 'Sign-in cancelled' : 'Something went wrong',
        message: aborted
          ? 'The device was not connected. You can close this page.'
          : String(out?.error_description ?? 'The device could not be connected.'),
        error: aborted ? undefined : String(out?.error ?? 'server_error'),
        requestId: context.state.requestId,
        retryHref: ctx.oidc.urlFor('code_verification'),
      });
    },

    async userCodeConfirmSource(
      ctx: KoaContextWithOIDC,
      _form: string,
      client: { clientId: string; clientName?: string },
      deviceInfo: Record<string, unknown>,
      userCode: string,
    ) {
      const ip = typeof deviceInfo?.ip === 'string' ? deviceInfo.ip.replace(/^::ffff:(?=\d+\.)/, '') : undefined;
      const agent =
        typeof deviceInfo?.ua === 'string' && deviceInfo.ua.trim() ? deviceInfo.ua.slice(0, 120) : undefined;
      render(ctx, 'device-confirm', {
        action: ctx.oidc.urlFor('code_verification'),
        xsrf: xsrfOf(ctx),
        userCode,
        clientName: client.clientName ?? client.clientId,
        requestedFrom: [ip && `IP address ${ip}`, agent && `(${agent})`].filter(Boolean).join(' '),
      });
    },

    async successSource(ctx: KoaContextWithOIDC) {
      const accountId = ctx.oidc.session?.accountId;
      render(ctx, 'device-success', {
        clientName: ctx.oidc.client?.clientName ?? ctx.oidc.client?.clientId,
        accountName: displayNameOf(accountId ? await accounts.find(accountId) : undefined, accountId ?? ''),
      });
    },
  };
}

/** oidc-provider's "persist can only be called on previously persisted Sessions" (lib/models/session.js). */
function isUnsavedSessionFault(error: unknown): boolean {
  return error instanceof TypeError && /previously persisted Sessions/.test(error.message);
}

/**
 * Provider middleware for `/device`: a GET's `user_code` goes into the entry page's field instead of being submitted,
 * and a POST from a locked address is refused (429, Retry-After) before the code is looked up.
 */
export function deviceCodeEntry({ render, throttle, clock }: Pick<DevicePageDeps, 'render' | 'throttle' | 'clock'>) {
  return async (ctx: KoaContextWithOIDC, next: () => Promise<void>) => {
    if (ctx.path !== DEVICE_PATH) return next();
    const context = ctx as DeviceContext;
    if (ctx.method === 'GET' && typeof ctx.query.user_code === 'string') {
      context.state[PREFILLED] = ctx.query.user_code.replace(/[\u0000-\u001f\u007f]/g, '').slice(0, 64);
      const rest = new URLSearchParams(ctx.querystring);
      rest.delete('user_code');
      ctx.querystring = rest.toString();
    } else if (ctx.method === 'POST') {
      const admitted = await throttle.admit(ctx.ip);
      if ('blockedUntil' in admitted) {
        const wait = minutes(admitted.blockedUntil, clock);
        ctx.status = 429;
        ctx.set('Retry-After', String(wait.seconds));
        render(ctx, 'device-code', {
          error: `Too many wrong codes from your network. Try again in ${wait.text}.`,
          retryHref: DEVICE_PATH,
        });
        return;
      }
      // The page source below counts a wrong code through the entry; its place at the gate ends with the request.
      context.state[CODE_ENTRY] = admitted.entry;
      try {
        return await next();
      } catch (error) {
        if (!isUnsavedSessionFault(error)) throw error;
        // oidc-provider 9 fails (a TypeError, 500) on a code entry that comes without a session it stored (no cookie,
        // an expired or forged one): its error page tries to re-save a session that was never saved. The entry page
        // starts one: send the browser there, with the code filled in.
        const code = (ctx.oidc?.params?.user_code as unknown) ?? undefined;
        const query =
          typeof code === 'string' && code ? `?${new URLSearchParams({ user_code: code.slice(0, 64) })}` : '';
        ctx.status = 303;
        ctx.redirect(`${DEVICE_PATH}${query}`);
        return;
      } finally {
        admitted.entry.release();
      }
    }
    await next();
  };
}
