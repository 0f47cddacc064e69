// What the supervisor sends a worker when the config changes: the Apis that changed, the rest by reference.
import { sameKeptApi } from '../model/parse-documents.ts';
import type { ApiResource, Config } from '../model/types.ts';

/**
 * A config as sent to a worker: everything but the Apis as they are, and the Apis as changes against the last config
 * this worker received: an Api, or the index of an unchanged one in that config's `apis` (configMessage). At
 * 10,000 routes the Apis are nearly all of a config: copying them to the worker took ~40 ms on every change.
 */
export interface ConfigMessage {
  type: 'config';
  config: Omit<Config, 'apis'>;
  /** An Api, or [index in the last config's apis, where its document sits now] (it may have moved in the text). */
  apis: Array<ApiResource | [number, ApiResource['source']]>;
}

/**
 * The config a ConfigMessage stands for, given the last one the worker received. An unchanged Api stays the very
 * object the worker has (its routes are then taken over, see buildRuntime); where its document now sits is written
 * into it (a snapshot's file name changes with every version, and nothing in the worker routes by it).
 */
export function configOf(m: ConfigMessage, received: Config): Config {
  const apis = m.apis.map((a) => {
    if (!Array.isArray(a)) return a;
    const kept = received.apis[a[0]];
    if (a[1] === undefined) delete kept.source;
    else kept.source = a[1];
    return kept;
  });
  return { ...m.config, apis };
}

/**
 * `next` for a worker that last received `prev`: Apis unchanged since then (sameKeptApi: decoded from the same kept
 * document, with the same cross-resource values) go as their index in `prev.apis` and where they sit now; the worker
 * keeps its own copy (gateway-worker.ts configOf).
 */
export function configMessage(prev: Config | undefined, next: Config): ConfigMessage {
  const { apis, ...rest } = next;
  if (prev === undefined) return { type: 'config', config: rest, apis };
  const at = new Map<string, number>();
  prev.apis.forEach((a, i) => at.set(`${a.metadata.namespace}/${a.metadata.name}`, i));
  return {
    type: 'config',
    config: rest,
    apis: apis.map((a) => {
      const i = at.get(`${a.metadata.namespace}/${a.metadata.name}`);
      return i !== undefined && sameKeptApi(prev.apis[i], a) ? [i, a.source] : a;
    }),
  };
}
