# SPDX-License-Identifier: GPL-2.0-only
# Minimal device set for the rig's QEMU (x86_64-softmmu, --without-default-devices).
CONFIG_Q35=y
CONFIG_VTD=y
CONFIG_IOMMUFD=y
CONFIG_PCIE_PORT=y
CONFIG_NVME_PCI=y
CONFIG_VFIO_PCI=y
CONFIG_VIRTIO_PCI=y
CONFIG_VIRTIO_SERIAL=y
CONFIG_ISA_DEBUG=y
