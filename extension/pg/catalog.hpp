// Where zonegate's tables are: their OIDs, looked up once and forgotten when a relcache
// invalidation names one of them (DROP/CREATE EXTENSION leaves no stale OID behind).
#pragma once

#include <cstdint>

namespace zonegate::pg {

using Oid = unsigned int;

struct Relations {
  Oid schema = 0;
  Oid zones = 0;
  Oid roles = 0;
  Oid users = 0;
  Oid user_zones = 0;
  Oid change_seq = 0;
};

// The tables of the installed extension. Throws zonegate::Error if it is not installed.
const Relations& relations();
// Forgets the OIDs; the next relations() looks them up again.
void forget_relations();
// Bumped by forget_relations(): what was derived from the tables' definitions (column numbers)
// is stale once it changes. Never errors; safe in any frame.
uint64_t relations_generation();
// Which of our tables relid is ('z', 'r', 'u', 'g'), or 0: compared with the last OIDs looked
// up, even after forget_relations().
char which_relation(Oid relid);

}  // namespace zonegate::pg
