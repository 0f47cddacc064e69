// The slice of the Reflect metadata API that tsyringe (inside @peculiar/x509) checks for at load time and calls;
// installed only when absent, so a real `reflect-metadata` loaded first wins. Import this before @peculiar/x509.

type MetadataReflect = typeof Reflect & {
  getMetadata?: (key: unknown, target: object, prop?: PropertyKey) => unknown;
  getOwnMetadata?: (key: unknown, target: object, prop?: PropertyKey) => unknown;
  defineMetadata?: (key: unknown, value: unknown, target: object, prop?: PropertyKey) => void;
};

const R = Reflect as MetadataReflect;

if (typeof R.getMetadata !== 'function') {
  // target → property ('' for the target itself) → key → value; weak so decorated classes can be collected.
  const store = new WeakMap<object, Map<PropertyKey, Map<unknown, unknown>>>();
  const own = (key: unknown, target: object, prop: PropertyKey = ''): unknown => store.get(target)?.get(prop)?.get(key);
  R.getOwnMetadata = own;
  R.getMetadata = (key, target, prop = '') => {
    // Like reflect-metadata: walk the prototype chain (a subclass sees its parent's metadata).
    for (let t: object | null = target; t !== null; t = Object.getPrototypeOf(t) as object | null) {
      const m = store.get(t)?.get(prop);
      if (m?.has(key)) return m.get(key);
    }
    return undefined;
  };
  R.defineMetadata = (key, value, target, prop = '') => {
    let byProp = store.get(target);
    if (byProp === undefined) store.set(target, byProp = new Map());
    let byKey = byProp.get(prop);
    if (byKey === undefined) byProp.set(prop, byKey = new Map());
    byKey.set(key, value);
  };
}
