// SPDX-License-Identifier: GPL-2.0-only
/* the typed allocators: kzalloc_obj(*p, gfp) */
#include <linux/slab.h>

struct probe_obj {
	int x;
};

struct probe_obj *probe_alloc(void);
struct probe_obj *probe_alloc(void)
{
	struct probe_obj *p = kzalloc_obj(*p, GFP_KERNEL);

	return p;
}
