// Verifies zonegate_changes payloads signed by the extension (docs/SECURITY.md, "The change
// channel"). NOTIFY needs no privilege, so a payload is trusted only when it carries a valid
// HMAC-SHA256 under the database's key (zonegate.notify_key()) and has not been seen before.
//
// A signed payload is the JSON text S the extension built, with its final "}" replaced by
// ,"mac":"<64 lowercase hex>"}, where mac = HMAC-SHA256(key, S). The verifier recovers S from
// the fixed-length suffix without parsing anything unauthenticated, compares the MAC in constant
// time, and only then parses S.
//
// Replay: a captured genuine payload sent again must not be applied again (a flush loop from one
// captured "*"). Versions (zonegate.change_seq, one per message) are unique but are allocated when
// the statement runs, so messages arrive in commit order, not version order. ReplayWindow is the
// IPsec/DTLS anti-replay window (RFC 4303 section 3.4.3): a bitmap of the last `size` versions
// below the newest seen; a version seen before, or older than the window, is refused. No clock
// is compared, so the database's and the proxy's clocks need not agree.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace zonegate::cache {

// Why a payload was not applied; the label of zonegate_notify_rejected_total.
enum class NotifyReject { kNone, kUnsigned, kBadMac, kReplay, kMalformed };
const char* notify_reject_name(NotifyReject r);
inline constexpr NotifyReject kNotifyRejects[] = {NotifyReject::kUnsigned, NotifyReject::kBadMac,
                                                  NotifyReject::kReplay, NotifyReject::kMalformed};

// Which versions were seen, over a sliding window below the newest one.
class ReplayWindow {
 public:
  enum class Check { kNew, kDuplicate, kTooOld };
  // size: versions remembered below the newest (rounded up to a multiple of 64).
  explicit ReplayWindow(uint64_t size);
  // Versions above `newest` are new, those in (newest - size, newest] new once each, older ones
  // too old. Until the first anchor() or mark() every version is new.
  void anchor(int64_t newest);
  Check check(int64_t version) const;
  // Records a version check() found new.
  void mark(int64_t version);
  bool anchored() const { return anchored_; }
  int64_t newest() const { return newest_; }
  uint64_t size() const { return size_; }

 private:
  bool bit(int64_t version) const;
  void set_bit(int64_t version, bool on);

  uint64_t size_;
  std::vector<uint64_t> bits_;  // bit (version mod size) for versions in the window
  int64_t newest_ = 0;
  bool anchored_ = false;
};

// A verified notification.
struct NotifyMessage {
  std::string json;  // S: the signed JSON text, what the cache reads
  int64_t version = 0;
  int64_t at = 0;  // epoch milliseconds on the database's clock (the lag metric only)
  std::string op;
};

struct NotifyVerdict {
  NotifyReject reject = NotifyReject::kNone;
  // kReplay for a version below the window (not a duplicate): if change_seq went back (a
  // restore, ALTER SEQUENCE), re-anchoring from the database lets it through.
  bool too_old = false;
};

class NotifyVerifier {
 public:
  // 2^20 versions (128 KiB): a transaction may stay open while a million other changes commit
  // and its notification still counts. Older ones are refused (their entries expire by TTL).
  static constexpr uint64_t kDefaultWindow = uint64_t{1} << 20;
  explicit NotifyVerifier(uint64_t window = kDefaultWindow);

  // The key (raw bytes) and change_seq's last_value, read together from the database. A new key
  // (the first, or a rotation) re-anchors the window at `last_version`: what a leaked old key
  // could have signed (a version far in the future) does not outlive it. With the same key the
  // window is kept across reconnects, unless change_seq went back below the newest version seen.
  void set_key(std::string key, int64_t last_version);
  void clear_key();
  bool has_key() const { return !key_.empty(); }
  // Checks a payload; on success fills *out and records its version, so the same payload a
  // second time is kReplay.
  NotifyVerdict verify(std::string_view payload, NotifyMessage* out);
  // True when the payload has the signed form's suffix (used when no key is known).
  static bool has_signature(std::string_view payload);
  // The MAC the extension would append (64 lowercase hex digits); tests sign with it.
  static std::string mac_hex(std::string_view key, std::string_view json);
  // S + the suffix: a signed payload.
  static std::string sign(std::string_view key, std::string_view json);
  const ReplayWindow& window() const { return window_; }

 private:
  std::string key_;
  ReplayWindow window_;
};

// At most one event per interval on an injected clock: the key re-fetch after a failed
// verification, the warning about rejected notifications.
class Cooldown {
 public:
  using Clock = std::function<int64_t()>;  // milliseconds, monotonic
  Cooldown(int64_t interval_ms, Clock clock)
      : interval_ms_(interval_ms), clock_(std::move(clock)) {}
  // True, and the interval starts again, when the last success is at least interval_ms ago.
  bool try_acquire();
  // Milliseconds until try_acquire() can succeed (0: now).
  int64_t remaining_ms() const;

 private:
  int64_t interval_ms_;
  Clock clock_;
  int64_t last_ = 0;
  bool used_ = false;
};

}  // namespace zonegate::cache
