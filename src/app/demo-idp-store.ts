// The development OpenID provider's storage: oidc-provider's adapter interface over one in-process map (expiring).
// Ours rather than the package's built-in one, which warns at start that it is for quick starts (so is this).

/** oidc-provider keeps its state in this map (one provider per process; state is lost when `lockgate up` stops). */
export function memoryAdapter(): new (name: string) => Record<string, (...a: never[]) => Promise<unknown>> {
  const store = new Map<string, { payload: Record<string, unknown>; expires: number }>();
  const live = (key: string): Record<string, unknown> | undefined => {
    const e = store.get(key);
    if (e === undefined || e.expires > Date.now()) return e?.payload;
    store.delete(key);
    return undefined;
  };
  return class {
    readonly name: string;
    constructor(name: string) {
      this.name = name;
    }
    async upsert(id: string, payload: Record<string, unknown>, expiresIn: number): Promise<void> {
      if (store.size > 10_000) for (const k of [...store.keys()]) live(k);
      store.set(`${this.name}:${id}`, { payload, expires: Date.now() + (expiresIn || 3600) * 1000 });
      if (typeof payload.uid === 'string') store.set(`uid:${payload.uid}`, { payload: { id }, expires: Date.now() + (expiresIn || 3600) * 1000 });
      if (typeof payload.userCode === 'string') store.set(`userCode:${payload.userCode}`, { payload: { id }, expires: Date.now() + (expiresIn || 3600) * 1000 });
    }
    async find(id: string): Promise<Record<string, unknown> | undefined> {
      return live(`${this.name}:${id}`);
    }
    async findByUid(uid: string): Promise<Record<string, unknown> | undefined> {
      const ref = live(`uid:${uid}`);
      return ref === undefined ? undefined : live(`${this.name}:${String(ref.id)}`);
    }
    async findByUserCode(code: string): Promise<Record<string, unknown> | undefined> {
      const ref = live(`userCode:${code}`);
      return ref === undefined ? undefined : live(`${this.name}:${String(ref.id)}`);
    }
    async consume(id: string): Promise<void> {
      const p = live(`${this.name}:${id}`);
      if (p !== undefined) p.consumed = Math.floor(Date.now() / 1000);
    }
    async destroy(id: string): Promise<void> {
      store.delete(`${this.name}:${id}`);
    }
    async revokeByGrantId(grantId: string): Promise<void> {
      for (const [k, e] of store) if (e.payload.grantId === grantId) store.delete(k);
    }
  } as never;
}
