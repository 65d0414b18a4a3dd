// libFuzzer target for JWT verification: arbitrary tokens must be refused with a reason or
// accepted unexpired; never a crash, never an exception. Half of each input is also
// re-signed with the right secrets (without a kid, and under each key's kid), so the checks
// behind the signature (duplicate members, NUL, exp, max_age, claims) get exercised.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "auth/jwt.hpp"

namespace {
const std::string kSecret = "fuzz-secret-0123456789abcdef0123";
const std::string kRotated = "fuzz-rotated-0123456789abcdef012";
constexpr int64_t kNow = 1'700'000'000;

void check(const zonegate::auth::Verifier& v, const std::string& token) {
  zonegate::auth::Claims claims;
  std::string err;
  bool ok = v.verify(token, kNow, claims, err);
  if (!ok && err.empty()) __builtin_trap();  // a refusal always says why
  // No subject is fine (an anon key: /rpc runs it as its role); require_exp is on, so an
  // accepted token always has an exp, and not one past (beyond the 30 s leeway).
  if (ok && (claims.exp == 0 || claims.exp < kNow - 30)) __builtin_trap();
  if (ok && claims.subject.find('\0') != std::string::npos) __builtin_trap();  // NUL is refused
  for (char c : err)
    if (c < 0x20 || c > 0x7e) __builtin_trap();  // descriptions are printable ASCII
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static std::unique_ptr<zonegate::auth::Verifier> verifier = [] {
    zonegate::auth::JwtConfig cfg;
    cfg.secret = kSecret;
    cfg.keys = {{"k1", "HS256", kSecret, ""}, {"k2", "HS256", kRotated, ""}};
    cfg.audience = {"zonegate"};
    cfg.max_age_s = 86400;
    std::string err;
    return zonegate::auth::Verifier::create(cfg, err);
  }();
  std::string input(reinterpret_cast<const char*>(data), size);
  check(*verifier, input);
  // The same bytes as a payload, correctly signed: exercises the claim checks.
  check(*verifier, zonegate::auth::sign_hs256(kSecret, input));
  check(*verifier, zonegate::auth::sign_hs256(kRotated, input, "k2"));
  return 0;
}
