// Drives zonegate-proxy's /rpc with @supabase/postgrest-js the way apps do: .rpc() by POST and
// GET, select/filter/order/limit/range chains, count, .single(), .maybeSingle(), .csv(),
// .stripNulls() and head requests, on the functions of postgrest_query_fixture.sql. Prints
// { name: {status, data, count, error} } as JSON; test_postgrest_query.py compares with psql.
import { PostgrestClient } from '@supabase/postgrest-js';

const [url, token] = process.argv.slice(2);
const client = new PostgrestClient(url, { headers: { Authorization: `Bearer ${token}` } });

const calls = {
  twice_post: () => client.rpc('twice', { n: 4 }),
  twice_get: () => client.rpc('twice', { n: 4 }, { get: true }),
  chain_post: () =>
    client.rpc('items').select('id,name').eq('active', true).order('id', { ascending: false }).limit(2),
  chain_get: () =>
    client
      .rpc('items', {}, { get: true })
      .select('id,name')
      .eq('active', true)
      .order('id', { ascending: false })
      .limit(2),
  count_exact: () => client.rpc('items', {}, { count: 'exact' }).select('id').order('id').range(1, 2),
  single: () => client.rpc('items').select().eq('id', 1).single(),
  single_many: () => client.rpc('items').select('id').lt('id', 3).single(),
  single_none: () => client.rpc('items').select('id').gt('id', 10).single(),
  maybe_single_one: () => client.rpc('items').select('id').eq('id', 2).maybeSingle(),
  maybe_single_none: () => client.rpc('items').select('id').eq('id', 99).maybeSingle(),
  maybe_single_many: () => client.rpc('items').select('id').lt('id', 3).maybeSingle(),
  csv: () => client.rpc('items').select('id,name').lte('id', 2).order('id').csv(),
  one_pair_single: () => client.rpc('one_pair', {}, { get: true }).single(),
  numbers_gte: () => client.rpc('numbers', { n: 3 }, { get: true }).gte('numbers', 2),
  in_quoted: () => client.rpc('items').select('id').in('name', ['apple', 'banana', 'x,y']).order('id'),
  is_null: () => client.rpc('items').select('id').is('price', null),
  not_is_null: () => client.rpc('items').select('id').not('price', 'is', null).order('id'),
  like: () => client.rpc('items').select('id').like('name', '*nan*'),
  ilike: () => client.rpc('items').select('id').ilike('name', 'd*'),
  or_refused: () => client.rpc('items').select('id').or('id.eq.1,id.eq.2'),
  head_count: () => client.rpc('items', {}, { head: true, count: 'exact' }),
  get_args_and_filters: () =>
    client.rpc('items', { min_id: 3 }, { get: true, count: 'exact' }).select('id').gt('id', 3).order('id'),
  strip_nulls: () => client.rpc('items').select('id,name,meta').eq('id', 2).stripNulls(),
  range: () => client.rpc('items').select('id').order('id').range(2, 3),
};
const out = {};
for (const [name, fn] of Object.entries(calls)) {
  const { status, data, count, error } = await fn();
  out[name] = { status, data, count, error };
}
console.log(JSON.stringify(out));
