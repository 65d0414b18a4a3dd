// The one place the product version is written down; the proxy and the extension both report it.
#pragma once

#define ZONEGATE_VERSION "0.5.0"
