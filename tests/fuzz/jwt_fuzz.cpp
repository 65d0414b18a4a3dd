// libFuzzer target for JWT verification: arbitrary tokens must be refused with a reason or
// accepted with a subject; never a crash, never an exception. Half of each input is also
// re-signed with the right secret, so the claims checks behind the signature get exercised.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "auth/jwt.hpp"

namespace {
const std::string kSecret = "fuzz-secret-0123456789abcdef0123";
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static std::unique_ptr<zonegate::auth::Verifier> verifier = [] {
    zonegate::auth::JwtConfig cfg;
    cfg.secret = kSecret;
    cfg.audience = {"zonegate"};
    std::string err;
    return zonegate::auth::Verifier::create(cfg, err);
  }();
  std::string input(reinterpret_cast<const char*>(data), size);
  zonegate::auth::Claims claims;
  std::string err;
  bool ok = verifier->verify(input, 1'700'000'000, claims, err);
  if (!ok && err.empty()) __builtin_trap();  // a refusal always says why
  // The same bytes as a payload, correctly signed: exercises the claim checks.
  std::string token = zonegate::auth::sign_hs256(kSecret, input);
  err.clear();
  if (verifier->verify(token, 1'700'000'000, claims, err) && claims.subject.empty())
    __builtin_trap();
  return 0;
}
