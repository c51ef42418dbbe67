// SPDX-License-Identifier: GPL-2.0-only
/* vfio_pci_core_match() calls this callback for the VF token */
#include <linux/vfio_pci_core.h>

static const struct vfio_device_ops probe_ops __maybe_unused = {
	.match_token_uuid = vfio_pci_core_match_token_uuid,
};
