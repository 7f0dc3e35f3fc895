/** `serverSideSessions.store` cannot be loaded, built or used as a session store (the CLI exits with code 2). */
export class SessionStoreConfigError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SessionStoreConfigError';
  }
}
