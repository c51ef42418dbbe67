/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Out-of-tree builds only (Makefile includes it in every file): what the
 * kernel built against lacks of the mainline interfaces the driver is
 * written for.  Each NVMEVF_OOT_* symbol comes from a probe (probes/),
 * never from a version number; the in-tree driver (make series) has
 * neither this file nor the symbols.
 */
#ifndef NVMEVF_COMPAT_H
#define NVMEVF_COMPAT_H

#include <linux/module.h>
#include <linux/slab.h>
#include <linux/vfio_pci_core.h>

#ifdef NVMEVF_OOT_NS_TOKENS
/* MODULE_IMPORT_NS("NS") as mainline writes it */
#undef MODULE_IMPORT_NS
#define MODULE_IMPORT_NS(ns)	MODULE_INFO(import_ns, ns)
#endif

#ifdef NVMEVF_OOT_NO_GET_IOMAP
/* BARs are mapped on first use: map BAR @bar now */
static inline void __iomem *
vfio_pci_core_get_iomap(struct vfio_pci_core_device *vdev, unsigned int bar)
{
	int ret = vfio_pci_core_setup_barmap(vdev, bar);

	return ret ? IOMEM_ERR_PTR(ret) : vdev->barmap[bar];
}
#endif

#ifdef NVMEVF_OOT_NO_ALLOC_OBJ
/* the typed allocators, with the GFP flags always given */
#define kzalloc_obj(P, GFP)	kzalloc(sizeof(P), GFP)
#define kvzalloc_obj(P, GFP)	kvzalloc(sizeof(P), GFP)
#endif

#endif /* NVMEVF_COMPAT_H */
