// nginx for the benchmark: config text for the upstream and the proxy peer, and starting one unprivileged.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PinnedProcess } from './pinned-process.ts';
import { freePort, httpGet, waitUntil } from './net.ts';

export const NGINX_BIN = process.env.LOCKGATE_BENCH_NGINX ?? '/usr/sbin/nginx';

/** Body of every small upstream response. */
export const SMALL_BODY = 'hello world\n';

/** Everything nginx would otherwise put under /var or /run goes into `dir`, so no root is needed. */
function preamble(dir: string, name: string): string {
  return [
    'daemon off;',
    // One process that is itself the worker: the pid we measure is the pid that serves.
    'master_process off;',
    'worker_processes 1;',
    `pid ${join(dir, `${name}.pid`)};`,
    `error_log ${join(dir, `${name}-error.log`)} warn;`,
    'events { worker_connections 4096; multi_accept on; }',
  ].join('\n');
}

function tempPaths(dir: string, name: string): string {
  const base = join(dir, `${name}-tmp`);
  return ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']
    .map((kind) => `  ${kind}_temp_path ${join(base, kind)};`)
    .join('\n');
}

/**
 * The origin: a fixed small body for any path and method (POST bodies are read and discarded by
 * `return`), and a static 64 KiB file for any path under /large/.
 */
export function upstreamConfig(dir: string, port: number): string {
  return `${preamble(dir, 'upstream')}
http {
${tempPaths(dir, 'upstream')}
  access_log off;
  keepalive_requests 10000000;
  keepalive_timeout 300s;
  sendfile on;
  tcp_nopush on;
  client_body_buffer_size 64k;
  server {
    listen 127.0.0.1:${port} backlog=4096;
    root ${join(dir, 'www')};
    location /large/ { default_type application/octet-stream; try_files /large.bin =404; }
    location / { default_type text/plain; return 200 "${SMALL_BODY.replace('\n', '\\n')}"; }
  }
}
`;
}

/**
 * The nginx peer: proxy_pass with upstream keepalive, the access log on (buffered, as a
 * production nginx would run) like Lockgate's, and buffers big enough that nothing spills to disk.
 */
export function proxyConfig(dir: string, port: number, upstreamPort: number): string {
  return `${preamble(dir, 'proxy')}
http {
${tempPaths(dir, 'proxy')}
  access_log ${join(dir, 'proxy-access.log')} combined buffer=64k flush=1s;
  keepalive_requests 10000000;
  keepalive_timeout 300s;
  client_body_buffer_size 64k;
  proxy_buffer_size 16k;
  proxy_buffers 8 16k;
  proxy_max_temp_file_size 0;
  upstream origin {
    server 127.0.0.1:${upstreamPort};
    keepalive 128;
    keepalive_requests 10000000;
  }
  server {
    listen 127.0.0.1:${port} backlog=4096;
    location / {
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
    }
  }
}
`;
}

/** Writes the 64 KiB static file the upstream serves under /large/. */
export function writeUpstreamFiles(dir: string): void {
  mkdirSync(join(dir, 'www'), { recursive: true });
  writeFileSync(join(dir, 'www', 'large.bin'), Buffer.alloc(64 * 1024, 'x'));
}

/** Starts nginx with `-p dir -c conf`, pinned to `cpu`; the caller waits for readiness. */
export function startNginx(dir: string, name: string, config: string, cpu: number): PinnedProcess {
  const conf = join(dir, `${name}.conf`);
  writeFileSync(conf, config);
  for (const kind of ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) {
    mkdirSync(join(dir, `${name}-tmp`, kind), { recursive: true });
  }
  const args = ['-p', dir, '-c', conf, '-e', join(dir, `${name}-error.log`)];
  return new PinnedProcess(cpu, NGINX_BIN, args, join(dir, `${name}.out`));
}

/**
 * The run's upstream: writes its files, starts it on `cpu` and waits until it answers; exits the process with its
 * output when it does not start in 10 s (nothing can be measured without it).
 */
export async function startUpstream(dir: string, cpu: number): Promise<{ port: number; process: PinnedProcess }> {
  writeUpstreamFiles(dir);
  const port = await freePort();
  const upstream = startNginx(dir, 'upstream', upstreamConfig(dir, port), cpu);
  if (!(await waitUntil(async () => (await httpGet(port, '/')).status === 200, 10_000, () => !upstream.exited))) {
    console.error(`upstream nginx did not start:\n${upstream.tail()}`);
    process.exit(1);
  }
  return { port, process: upstream };
}
