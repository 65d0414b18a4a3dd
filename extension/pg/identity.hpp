// Who the current request is for, and whether the session may say so. The identity comes from
// zonegate.user_id or the "sub" claim of request.jwt.claims, but it is honoured only when the
// session user (the login role, which SET ROLE does not change) is a superuser or a member of
// zonegate_authenticator; a value from anyone else is refused with an error. A value set for the
// transaction hides everything set for the session. See docs/SECURITY.md.
#pragma once

#include <string_view>

namespace zonegate::pg {

// Defines zonegate.user_id and registers the role-change callbacks; called from _PG_init.
void identity_init();

// The current identity. False when there is none (nothing set, or claims without "sub"). On
// true, *out views the id; it is valid until the next change of either setting. Throws
// zonegate::Error (42501) when a value is set but the session is not trusted, and (22023) when
// the claims are not a JSON object, repeat "sub", or put a NUL in it.
bool current_identity(std::string_view* out);

// Whether the session user may choose the identity (cached until a role changes).
bool session_is_trusted();

}  // namespace zonegate::pg
