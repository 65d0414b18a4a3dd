// Base64url without padding (RFC 4648 §5), as JWTs use it. Hand-written: OpenSSL's EVP base64
// speaks only the standard alphabet with padding, and converting costs as much as this.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace zonegate {

std::string base64url_encode(std::string_view bytes);
// Decodes unpadded base64url; nullopt on any character outside the alphabet or a bad length.
std::optional<std::string> base64url_decode(std::string_view text);

}  // namespace zonegate
