// Error objects as @supabase/postgrest-js hands them to apps: calls /rpc functions of
// tests/integration/postgrest_errors_fixture.sql that fail, and prints { name: {status, data,
// error} } as JSON. An empty token makes an anonymous client (no Authorization header).
import { PostgrestClient } from '@supabase/postgrest-js';

const [url, token] = process.argv.slice(2);
const client = new PostgrestClient(url, token ? { headers: { Authorization: `Bearer ${token}` } } : {});

const calls = {
  cast_22P02: () => client.rpc('to_int', { t: 'abc' }, { get: true }),
  unique_23505: () => client.rpc('claim', { k: 'taken' }),
  raise_P0001: () => client.rpc('refuse', { msg: 'I refuse!' }, { get: true }),
  unknown_PGRST202: () => client.rpc('nope', { a: 1 }),
  custom_PT402: () => client.rpc('pay', {}, { get: true }),
  privilege_42501: () => client.rpc('members_only', {}, { get: true }),
};
const out = {};
for (const [name, fn] of Object.entries(calls)) {
  const { status, data, error } = await fn();
  out[name] = { status, data, error };
}
console.log(JSON.stringify(out));
