// @supabase/postgrest-js against zonegate-proxy's /rpc with roles: a client without any token,
// an anon-key client (a JWT with a role and no sub), clients whose JWT role is granted or denied
// a function, a read-only GET of a writing function, and a role the proxy may not switch to.
// Prints { name: {status, data, error} } as JSON; test_postgrest_context.py asserts on it.
import { PostgrestClient } from '@supabase/postgrest-js';

const [url, anonKey, editorToken, userToken, badRoleToken] = process.argv.slice(2);
const bearer = (t) => ({ headers: { Authorization: `Bearer ${t}` } });
const noToken = new PostgrestClient(url);
const anon = new PostgrestClient(url, bearer(anonKey));
const editor = new PostgrestClient(url, bearer(editorToken));
const user = new PostgrestClient(url, bearer(userToken));
// A valid token whose role is a superuser: refused before anything reaches Postgres.
const badRole = new PostgrestClient(url, bearer(badRoleToken));

const calls = {
  no_token: () => noToken.rpc('seen', {}, { get: true }),
  anon_key: () => anon.rpc('seen'),
  editor: () => editor.rpc('editor_only'),
  user: () => user.rpc('editor_only'),
  get_writer: () => user.rpc('writer', { v: 'from-js-get' }, { get: true }),
  post_writer: () => user.rpc('writer', { v: 'from-js-post' }),
  bad_role: () => badRole.rpc('seen'),
};
const out = {};
for (const [name, fn] of Object.entries(calls)) {
  const { status, data, error } = await fn();
  out[name] = { status, data, error };
}
console.log(JSON.stringify(out));
