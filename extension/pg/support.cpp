// Planner support for zonegate.can_access_current(zone_id), the RLS check. It lets one policy
// expression be fast at every scope size:
//  - selectivity: the fraction of zones the (plan-time) current user sees, so row estimates
//    are realistic instead of Postgres' default of one third;
//  - index condition: on a btree index over a bigint zone_id column the call is replaced by the
//    exactly equivalent `zone_id = ANY (zonegate.current_zones())`, an index scan over the
//    user's zones. It is offered for every user: a plan is cached and reused for whoever is
//    current later, and an index plan made while an admin was current costs a 10-zone user
//    little, while a sequential plan made for the admin made that user's query 1,600x slower
//    (docs/BENCHMARKS.md). For the admin the index plan measured faster than the scan too.
// Both answers only steer plan choice; either plan computes the same rows for any user.
#include <cstdint>
#include <string>

#include "core/error.hpp"

extern "C" {
#include "postgres.h"
#include "fmgr.h"
#include "access/stratnum.h"
#include "catalog/namespace.h"
#include "catalog/pg_opfamily_d.h"
#include "catalog/pg_type_d.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "nodes/pg_list.h"
#include "nodes/supportnodes.h"
#include "optimizer/cost.h"
#include "optimizer/optimizer.h"
#include "parser/parse_func.h"
#include "utils/lsyscache.h"
}

#include "pg/cache.hpp"
#include "pg/guard.hpp"

namespace {

using namespace zonegate;
using namespace zonegate::pg;

// Fraction of all zones the current user sees (0 without a user).
double current_fraction() {
  cache_begin_call();
  const UserEntry* e = nullptr;
  try {
    e = cache_current_user();
  } catch (const Error&) {
    // An identity this session may not set: the call itself refuses it when it runs; the plan
    // just gets the default estimate.
    return 1.0 / 3.0;
  }
  if (e == nullptr || !e->visible) return 0.0;
  size_t total = e->tree->size();
  if (total == 0) return 0.0;
  return static_cast<double>(e->scope.count()) / static_cast<double>(total);
}

Node* index_condition(SupportRequestIndexCondition* req) {
  if (!IsA(req->node, FuncExpr) || req->indexarg != 0) return nullptr;
  FuncExpr* call = reinterpret_cast<FuncExpr*>(req->node);
  if (list_length(call->args) != 1) return nullptr;
  Node* arg = static_cast<Node*>(linitial(call->args));
  if (req->opfamily != INTEGER_BTREE_FAM_OID || exprType(arg) != INT8OID) return nullptr;
  Oid eq = get_opfamily_member(req->opfamily, INT8OID, INT8OID, BTEqualStrategyNumber);
  Oid current_zones = LookupFuncName(
      list_make2(makeString(pstrdup("zonegate")), makeString(pstrdup("current_zones"))), 0, nullptr,
      true);
  if (eq == InvalidOid || current_zones == InvalidOid) return nullptr;
  FuncExpr* zones =
      makeFuncExpr(current_zones, INT8ARRAYOID, NIL, InvalidOid, InvalidOid, COERCE_EXPLICIT_CALL);
  ScalarArrayOpExpr* saop = makeNode(ScalarArrayOpExpr);
  saop->opno = eq;
  saop->opfuncid = get_opcode(eq);
  saop->hashfuncid = InvalidOid;
  saop->negfuncid = InvalidOid;
  saop->useOr = true;
  saop->inputcollid = InvalidOid;
  saop->args = list_make2(copyObjectImpl(arg), zones);  // copyObject() needs GNU typeof
  saop->location = -1;
  req->lossy = false;  // exactly equivalent: the original call need not be rechecked
  return reinterpret_cast<Node*>(list_make1(saop));
}

Datum support_body(FunctionCallInfo fcinfo) {
  Node* raw = reinterpret_cast<Node*>(PG_GETARG_POINTER(0));
  if (IsA(raw, SupportRequestSelectivity)) {
    auto* req = reinterpret_cast<SupportRequestSelectivity*>(raw);
    if (req->is_join) return PointerGetDatum(nullptr);
    double f = current_fraction();
    req->selectivity = f < 1e-6 ? 1e-6 : (f > 1.0 ? 1.0 : f);
    return PointerGetDatum(req);
  }
  if (IsA(raw, SupportRequestCost)) {
    auto* req = reinterpret_cast<SupportRequestCost*>(raw);
    req->startup = 0;
    req->per_tuple = 2 * cpu_operator_cost;  // a hash probe and a binary search
    return PointerGetDatum(req);
  }
  if (IsA(raw, SupportRequestIndexCondition)) {
    auto* req = reinterpret_cast<SupportRequestIndexCondition*>(raw);
    Node* cond = pg_call([req] { return index_condition(req); });
    return PointerGetDatum(cond);
  }
  return PointerGetDatum(nullptr);
}

}  // namespace

ZONEGATE_SQL_FUNCTION(zonegate_can_access_current_support, support_body)
