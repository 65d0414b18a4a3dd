// Verification of signed change notifications; see notify_verifier.hpp.
#include "cache/notify_verifier.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>

#include "common/json.hpp"

namespace zonegate::cache {

namespace {

constexpr std::string_view kMacOpen = ",\"mac\":\"";
constexpr std::string_view kMacClose = "\"}";
constexpr size_t kMacHex = 64;
constexpr size_t kSuffix = kMacOpen.size() + kMacHex + kMacClose.size();  // 74

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;  // the extension writes lowercase; anything else is not its signature
}

// The signed text S of a payload that has the suffix: the payload up to it, and "}".
std::string signed_text(std::string_view payload) {
  std::string s(payload.substr(0, payload.size() - kSuffix));
  s.push_back('}');
  return s;
}

}  // namespace

const char* notify_reject_name(NotifyReject r) {
  switch (r) {
    case NotifyReject::kNone:
      return "none";
    case NotifyReject::kUnsigned:
      return "unsigned";
    case NotifyReject::kBadMac:
      return "bad_mac";
    case NotifyReject::kReplay:
      return "replay";
    case NotifyReject::kMalformed:
      return "malformed";
  }
  return "unknown";
}

ReplayWindow::ReplayWindow(uint64_t size)
    : size_(std::max<uint64_t>(64, (size + 63) / 64 * 64)), bits_(size_ / 64, 0) {}

bool ReplayWindow::bit(int64_t version) const {
  uint64_t i = static_cast<uint64_t>(version) % size_;
  return (bits_[i / 64] >> (i % 64)) & 1U;
}

void ReplayWindow::set_bit(int64_t version, bool on) {
  uint64_t i = static_cast<uint64_t>(version) % size_;
  uint64_t mask = uint64_t{1} << (i % 64);
  if (on)
    bits_[i / 64] |= mask;
  else
    bits_[i / 64] &= ~mask;
}

void ReplayWindow::anchor(int64_t newest) {
  std::fill(bits_.begin(), bits_.end(), 0);
  newest_ = newest;
  anchored_ = true;
}

ReplayWindow::Check ReplayWindow::check(int64_t version) const {
  if (!anchored_ || version > newest_) return Check::kNew;
  // Versions are never negative (verify() refuses them), so the difference cannot overflow.
  if (static_cast<uint64_t>(newest_ - version) >= size_) return Check::kTooOld;
  return bit(version) ? Check::kDuplicate : Check::kNew;
}

void ReplayWindow::mark(int64_t version) {
  if (!anchored_) anchor(version);
  if (version > newest_) {
    // The slots of the versions the window moves over held versions that leave it.
    if (static_cast<uint64_t>(version - newest_) >= size_) {
      std::fill(bits_.begin(), bits_.end(), 0);
    } else {
      for (int64_t v = newest_ + 1; v < version; ++v)
        set_bit(v, false);
    }
    newest_ = version;
  }
  set_bit(version, true);
}

NotifyVerifier::NotifyVerifier(uint64_t window) : window_(window) {}

void NotifyVerifier::set_key(std::string key, int64_t last_version) {
  if (key != key_) {
    key_ = std::move(key);
    window_.anchor(last_version);
  } else if (!window_.anchored() || last_version < window_.newest()) {
    // Every version ever signed is at most change_seq's last_value: a smaller one means the
    // sequence was reset (a restore, ALTER SEQUENCE ... RESTART).
    window_.anchor(last_version);
  }
}

void NotifyVerifier::clear_key() {
  key_.clear();
}

bool NotifyVerifier::has_signature(std::string_view p) {
  if (p.size() < kSuffix + 1 || p.front() != '{') return false;
  std::string_view suffix = p.substr(p.size() - kSuffix);
  if (suffix.substr(0, kMacOpen.size()) != kMacOpen) return false;
  if (suffix.substr(kSuffix - kMacClose.size()) != kMacClose) return false;
  std::string_view hex = suffix.substr(kMacOpen.size(), kMacHex);
  return std::all_of(hex.begin(), hex.end(), [](char c) { return hex_value(c) >= 0; });
}

std::string NotifyVerifier::mac_hex(std::string_view key, std::string_view json) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(json.data()), json.size(), mac, &len);
  static const char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(size_t{2} * len);
  for (unsigned int i = 0; i < len; ++i) {
    out.push_back(kDigits[mac[i] >> 4]);
    out.push_back(kDigits[mac[i] & 0xf]);
  }
  return out;
}

std::string NotifyVerifier::sign(std::string_view key, std::string_view json) {
  std::string out(json.substr(0, json.empty() ? 0 : json.size() - 1));
  out += kMacOpen;
  out += mac_hex(key, json);
  out += kMacClose;
  return out;
}

NotifyVerdict NotifyVerifier::verify(std::string_view payload, NotifyMessage* out) {
  NotifyVerdict v;
  if (!has_signature(payload)) {
    // Something that tries to be signed and is not (truncated, garbled) is malformed; a payload
    // without any "mac" is one nobody signed (a plain NOTIFY, an extension before 0.6).
    v.reject = payload.find("\"mac\"") != std::string_view::npos ? NotifyReject::kMalformed
                                                                 : NotifyReject::kUnsigned;
    return v;
  }
  if (key_.empty()) {
    v.reject = NotifyReject::kBadMac;
    return v;
  }
  std::string text = signed_text(payload);
  unsigned char want[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key_.data(), static_cast<int>(key_.size()),
       reinterpret_cast<const unsigned char*>(text.data()), text.size(), want, &len);
  unsigned char got[kMacHex / 2];
  std::string_view hex = payload.substr(payload.size() - kSuffix + kMacOpen.size(), kMacHex);
  for (size_t i = 0; i < sizeof got; ++i)
    got[i] = static_cast<unsigned char>(hex_value(hex[2 * i]) << 4 | hex_value(hex[2 * i + 1]));
  if (len != sizeof got || CRYPTO_memcmp(want, got, sizeof got) != 0) {
    v.reject = NotifyReject::kBadMac;
    return v;
  }
  // Authentic: only now is the text parsed.
  rapidjson::Document d;
  std::string err;
  if (!json::parse(text, d, err) || !d.IsObject()) {
    v.reject = NotifyReject::kMalformed;
    return v;
  }
  auto version = d.FindMember("version");
  auto at = d.FindMember("at");
  auto op = d.FindMember("op");
  if (version == d.MemberEnd() || !version->value.IsInt64() || version->value.GetInt64() < 0 ||
      at == d.MemberEnd() || !at->value.IsInt64() || op == d.MemberEnd() || !op->value.IsString()) {
    v.reject = NotifyReject::kMalformed;
    return v;
  }
  int64_t ver = version->value.GetInt64();
  switch (window_.check(ver)) {
    case ReplayWindow::Check::kDuplicate:
      v.reject = NotifyReject::kReplay;
      return v;
    case ReplayWindow::Check::kTooOld:
      v.reject = NotifyReject::kReplay;
      v.too_old = true;
      return v;
    case ReplayWindow::Check::kNew:
      break;
  }
  window_.mark(ver);
  out->version = ver;
  out->at = at->value.GetInt64();
  out->op.assign(op->value.GetString(), op->value.GetStringLength());
  out->json = std::move(text);
  return v;
}

bool Cooldown::try_acquire() {
  int64_t now = clock_();
  if (used_ && now - last_ < interval_ms_) return false;
  used_ = true;
  last_ = now;
  return true;
}

int64_t Cooldown::remaining_ms() const {
  if (!used_) return 0;
  return std::max<int64_t>(0, last_ + interval_ms_ - clock_());
}

}  // namespace zonegate::cache
