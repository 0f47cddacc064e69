// `lockgate subscription create|list|show|regenerate|suspend|resume|cancel`: the gateway-local subscription store.
import { parseArgs } from 'node:util';
import { SubscriptionStore, SubscriptionError } from '../store/subscription-store.ts';
import { effectiveState, formatScope, parseScope, type SubscriptionRecord } from '../model/subscription.ts';
import type { Verb } from './verb.ts';

const USAGE = `Usage: lockgate subscription ACTION [options]

Manages the subscriptions of a standalone gateway, kept in <data-dir>/subscriptions.db (node:sqlite,
WAL). Keys are shown once, when created or regenerated; only their SHA-256 hashes are stored.

Actions:
  create NAME --scope SCOPE [--owner WHO] [--primary-key KEY] [--secondary-key KEY] [--expires DATE]
      SCOPE is "all", "product:NAME" or "api:NAME". Keys are generated (32 hex characters, as
      API Management does) unless supplied, so consumers migrating from API Management keep theirs.
  list                      every subscription, without keys
  show NAME                 one subscription, without keys
  regenerate NAME --key primary|secondary [--value KEY]
                            replaces one key; the other keeps working
  suspend NAME | resume NAME | cancel NAME
                            cancel is final

Options:
  --data-dir DIR   where the database lives (default ./lockgate-data, or $LOCKGATE_DATA_DIR)
  --json           machine-readable output`;

function describe(r: SubscriptionRecord, now: Date): Record<string, unknown> {
  return {
    id: r.id,
    name: r.name,
    scope: formatScope(r.scope),
    owner: r.owner,
    state: effectiveState(r, now.getTime()),
    createdAt: r.createdAt,
    expiresAt: r.expiresAt,
  };
}

function table(rows: Array<Record<string, unknown>>): string {
  const cols = ['name', 'scope', 'state', 'owner', 'expiresAt', 'id'];
  const cell = (v: unknown): string => (v === null || v === undefined || v === '' ? '-' : String(v));
  const widths = cols.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  const line = (vals: string[]): string => vals.map((v, i) => v.padEnd(widths[i])).join('  ').trimEnd();
  return [line(cols), ...rows.map((r) => line(cols.map((c) => cell(r[c]))))].join('\n');
}

export const subscriptionVerb: Verb = {
  summary: 'manage subscriptions and their keys (create, list, regenerate, suspend, resume, cancel)',
  usage: USAGE,
  async run(args) {
    let parsed;
    try {
      parsed = parseArgs({
        args,
        allowPositionals: true,
        options: {
          'data-dir': { type: 'string' },
          scope: { type: 'string' },
          owner: { type: 'string' },
          'primary-key': { type: 'string' },
          'secondary-key': { type: 'string' },
          expires: { type: 'string' },
          key: { type: 'string' },
          value: { type: 'string' },
          json: { type: 'boolean', default: false },
        },
      });
    } catch (err) {
      process.stderr.write(`lockgate subscription: ${(err as Error).message}\n`);
      return 1;
    }
    const { values, positionals } = parsed;
    const [action, name] = positionals;
    const needsName = action !== 'list';
    if (action === undefined || (needsName && name === undefined)) {
      process.stderr.write(`${USAGE}\n`);
      return 1;
    }
    const out = (human: string, data: unknown): void => {
      process.stdout.write(values.json ? `${JSON.stringify(data)}\n` : `${human}\n`);
    };
    const store = SubscriptionStore.open(values['data-dir'] ?? process.env.LOCKGATE_DATA_DIR ?? 'lockgate-data');
    const now = new Date();
    try {
      switch (action) {
        case 'create': {
          if (values.scope === undefined) throw new SubscriptionError('invalid', '--scope is required (all, product:NAME or api:NAME)');
          const scope = parseScope(values.scope);
          if (typeof scope === 'string') throw new SubscriptionError('invalid', scope);
          const { record, keys } = store.create({
            name, scope, owner: values.owner, primaryKey: values['primary-key'], secondaryKey: values['secondary-key'], expiresAt: values.expires ?? null,
          }, now);
          const shown = [keys.primaryKey && `primary key:   ${keys.primaryKey}`, keys.secondaryKey && `secondary key: ${keys.secondaryKey}`].filter(Boolean);
          out(
            `created subscription ${record.name} (${record.id}), scope ${formatScope(record.scope)}` +
              (shown.length ? `\n${shown.join('\n')}\nThe keys are shown only now; store them safely.` : ''),
            { ...describe(record, now), ...keys },
          );
          return 0;
        }
        case 'list': {
          const rows = store.list().map((r) => describe(r, now));
          out(rows.length ? table(rows) : 'no subscriptions', rows);
          return 0;
        }
        case 'show': {
          const r = store.get(name);
          if (r === undefined) throw new SubscriptionError('not_found', `no subscription named "${name}"`);
          const d = describe(r, now);
          out(Object.entries(d).map(([k, v]) => `${k}: ${v ?? '-'}`).join('\n'), d);
          return 0;
        }
        case 'regenerate': {
          if (values.key !== 'primary' && values.key !== 'secondary') throw new SubscriptionError('invalid', '--key primary or --key secondary is required');
          const key = store.regenerate(name, values.key, values.value, now);
          const shown = values.value === undefined;
          out(shown ? `new ${values.key} key: ${key}\nThe key is shown only now; the other key keeps working.` : `${values.key} key replaced`, {
            name, which: values.key, ...(shown ? { key } : {}),
          });
          return 0;
        }
        case 'suspend':
        case 'resume':
        case 'cancel': {
          const r = store.setState(name, action, now);
          out(`subscription ${name} is now ${r.state}`, describe(r, now));
          return 0;
        }
        default:
          process.stderr.write(`lockgate subscription: unknown action "${action}"\n${USAGE}\n`);
          return 1;
      }
    } catch (err) {
      if (err instanceof SubscriptionError) {
        process.stderr.write(`lockgate subscription: ${err.message}\n`);
        return 1;
      }
      throw err;
    } finally {
      store.close();
    }
  },
};
