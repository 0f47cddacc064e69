// Preloaded into every test file's process (npm test: --import): a file still running after FILE_LIMIT_MS is ended.
//
// node --test bounds each test (--test-timeout) but not the process of a file: a test that timed out while a server
// it opened was stuck in close() kept its file's process (and so the whole run) alive for an hour and a half in CI.
// --test-force-exit would end such a process, but in Node 24 it also ends files before their later describe()
// blocks have run (17 tests silently not run), so it is not used. This bound is well above any file's real time
// (the longest takes well under a minute) and below CI's, and it says which file it ended and what was still open.
const FILE_LIMIT_MS = Number(process.env.LOCKGATE_TEST_FILE_LIMIT_MS ?? 300_000);

const timer = setTimeout(() => {
  const open = (process.getActiveResourcesInfo?.() ?? []).join(', ');
  process.stderr.write(`\ntest file ${process.argv[1] ?? '?'} still running after ${FILE_LIMIT_MS / 1000} s; ended (open: ${open || 'nothing'})\n`);
  process.exit(1);
}, FILE_LIMIT_MS);
timer.unref();
