// Calls zonegate-proxy's /rpc through @supabase/postgrest-js, the client Supabase apps use, and
// prints what it got as JSON: { name: {status, data, error} }.
import { PostgrestClient } from '@supabase/postgrest-js';

const [url, token] = process.argv.slice(2);
const client = new PostgrestClient(url, { headers: { Authorization: `Bearer ${token}` } });

const calls = {
  add_post: () => client.rpc('add', { a: 2, b: 3 }),
  add_get: () => client.rpc('add', { a: 20, b: 22 }, { get: true }),
  echo_get: () => client.rpc('echo', { msg: 'hi', times: 2 }, { get: true }),
  bump_post: () => client.rpc('bump', { n: 5 }),
  my_zones_get: () => client.rpc('my_zones', {}, { get: true }),
  report_post: () => client.rpc('report', { zone: 21 }),
  one_thing_get: () => client.rpc('one_thing', {}, { get: true }),
  fail_get: () => client.rpc('fail', { msg: 'boom' }, { get: true }),
  hidden_post: () => client.rpc('hidden', {}),
};
const out = {};
for (const [name, fn] of Object.entries(calls)) {
  const { status, data, error } = await fn();
  out[name] = { status, data, error };
}
console.log(JSON.stringify(out));
