// The CLI's user-facing failure, in a file of its own so that the credential store and the admin-API client can share it.

/** A user-facing failure: the verb prints the message and exits 1. */
export class AdminClientError extends Error {
  override name = 'AdminClientError';
}
