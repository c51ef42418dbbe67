// SPDX-License-Identifier: GPL-2.0-only
/* compiles only where a symbol namespace is a token, not a string */
#include <linux/module.h>

MODULE_IMPORT_NS(NVMEVF_PROBE);
