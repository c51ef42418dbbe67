// SPDX-License-Identifier: GPL-2.0-only
/*
 * nvme-vfio-pci: VFIO live migration (uAPI v2) of an NVMe VF through its PF,
 * the TP4159 Migration Management Controller.
 *
 * The migration FSM and the save and resume files; the stream itself is in
 * stream.c.  Documentation/migration.rst has the design (arcs, error
 * policy, locking, lifetime) and Documentation/stream.rst the stream format.
 *
 * Locking, in order:
 *   migf->io_lock -> state_mutex -> migf->lock
 *   migf->io_lock -> (user copies)
 * state_mutex serialises the FSM, MIG_DATA_SIZE and every PF command; it is
 * never held across a user copy.  migf->lock guards a file's state and
 * bookkeeping and is never held across a user copy either.  migf->io_lock
 * serialises a file's read()/write() callers across their user copies; a
 * write() that completes the stream takes state_mutex under it to commit
 * the state to the device.  Nothing takes io_lock under state_mutex.
 */
#include <linux/anon_inodes.h>
#include <linux/bitfield.h>
#include <linux/cleanup.h>
#include <linux/debugfs.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/io-64-nonatomic-lo-hi.h>
#include <linux/iopoll.h>
#include <linux/ktime.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/nvme.h>
#include <linux/overflow.h>
#include <linux/pci.h>
#include <linux/poll.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/uaccess.h>
#include <linux/unaligned.h>
#include <linux/vfio.h>
#include <linux/vfio_pci_core.h>

#include "nvme-vfio-pci.h"

static bool ns_identity = true;
module_param(ns_identity, bool, 0644);
MODULE_PARM_DESC(ns_identity,
		 "Refuse a source whose namespaces have another NGUID, EUI64 or UUID than the destination's (default: Y). N checks only NSID, LBA format, metadata and size, for namespaces copied to another subsystem");

/* ---- Migration files ---- */

/**
 * enum nvmevf_migf_state - state of a migration file
 * @NVMEVF_MIGF_PRECOPY: save, initial data only: read() ends with -ENOMSG
 * @NVMEVF_MIGF_COMPLETE: save, the whole stream: read() ends with 0
 * @NVMEVF_MIGF_RESUMING: resume, accepting writes
 * @NVMEVF_MIGF_DISABLED: read()/write()/ioctl() fail with -ENODEV
 */
enum nvmevf_migf_state {
	NVMEVF_MIGF_PRECOPY,
	NVMEVF_MIGF_COMPLETE,
	NVMEVF_MIGF_RESUMING,
	NVMEVF_MIGF_DISABLED,
};

/**
 * struct nvmevf_seg - a piece of a save stream
 * @buf: the bytes (kvmalloc)
 * @len: their number
 */
struct nvmevf_seg {
	u8 *buf;
	size_t len;
};

/**
 * struct nvmevf_migf - a save or resume file
 * @filp: the file
 * @nvmevf: the device; the file holds a reference on its struct device, so
 *	the memory (state_mutex included) outlives the file
 * @lock: guards everything below; never held across a user copy
 * @io_lock: serialises read()/write() across their user copies
 * @state: enum nvmevf_migf_state
 * @busy: read()/write() calls copying from or into the buffers without
 *	@lock; the buffers are freed when the file is disabled and @busy is 0
 * @freed: the buffers are gone (counted out of files_holding)
 * @committed: resume: the stream was loaded into the device
 * @pos: bytes read (save)
 * @seg: save stream: [0] stream header and compat record, [1] controller
 *	state and end records
 * @nseg: segments filled
 * @info: the destination's identity (resume)
 * @rd: the stream parser (resume)
 * @poll_wait: woken when more data is ready (STOP_COPY) or the file dies
 */
struct nvmevf_migf {
	struct file *filp;
	struct nvmevf_pci_core_device *nvmevf;
	struct mutex lock;		/* file state; no user copy under it */
	struct mutex io_lock;		/* one reader/writer at a time */
	enum nvmevf_migf_state state;
	unsigned int busy;
	bool freed;
	bool committed;
	u64 pos;
	struct nvmevf_seg seg[2];
	unsigned int nseg;
	struct nvmevf_dev_info *info;
	struct nvmevf_reader rd;
	wait_queue_head_t poll_wait;
};

/*
 * A file may outlive its device's use (the user keeps the fd after closing
 * the device): once DISABLED, which happens under state_mutex before the
 * device is closed, the file only fails.
 */
static bool nvmevf_migf_dead(struct nvmevf_migf *migf)
{
	lockdep_assert_held(&migf->lock);
	return migf->state == NVMEVF_MIGF_DISABLED ||
	       test_bit(NVMEVF_LM_PF_EVENT, &migf->nvmevf->lm_flags);
}

static struct nvmevf_migf *
nvmevf_migf_alloc(struct nvmevf_pci_core_device *nvmevf,
		  enum nvmevf_migf_state state)
{
	struct nvmevf_migf *migf;

	migf = kzalloc_obj(*migf, GFP_KERNEL_ACCOUNT);
	if (!migf)
		return NULL;
	migf->nvmevf = nvmevf;
	get_device(&nvmevf->core_device.vdev.device);
	atomic_inc(&nvmevf->stats.files_holding);
	migf->state = state;
	mutex_init(&migf->lock);
	mutex_init(&migf->io_lock);
	init_waitqueue_head(&migf->poll_wait);
	return migf;
}

/* the data buffers: freed when the file is disabled, or at release */
static void nvmevf_migf_free_bufs(struct nvmevf_migf *migf)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(migf->seg); i++) {
		kvfree(migf->seg[i].buf);
		migf->seg[i].buf = NULL;
		migf->seg[i].len = 0;
	}
	migf->nseg = 0;
	nvmevf_reader_free(&migf->rd);
	kvfree(migf->info);
	migf->info = NULL;
	if (!migf->freed)
		atomic_dec(&migf->nvmevf->stats.files_holding);
	migf->freed = true;
}

static void nvmevf_migf_free(struct nvmevf_migf *migf)
{
	struct nvmevf_pci_core_device *nvmevf = migf->nvmevf;

	nvmevf_migf_free_bufs(migf);
	mutex_destroy(&migf->io_lock);
	mutex_destroy(&migf->lock);
	kfree(migf);
	put_device(&nvmevf->core_device.vdev.device);
}

static int nvmevf_migf_release(struct inode *inode, struct file *filp)
{
	nvmevf_migf_free(filp->private_data);
	return 0;
}

/* A reader or writer is done with the buffers it got from peek/window. */
static void nvmevf_migf_unbusy(struct nvmevf_migf *migf)
{
	lockdep_assert_held(&migf->lock);
	if (!WARN_ON(!migf->busy) && !--migf->busy &&
	    migf->state == NVMEVF_MIGF_DISABLED)
		nvmevf_migf_free_bufs(migf);
}

/*
 * The next bytes to read; none at the end (of the precopy data).  When
 * bytes are returned the file is busy until nvmevf_save_consume().
 */
static int nvmevf_save_peek(struct nvmevf_migf *migf, const u8 **src,
			    size_t *n)
{
	unsigned int i;
	u64 off;

	guard(mutex)(&migf->lock);
	if (nvmevf_migf_dead(migf))
		return -ENODEV;
	off = migf->pos;
	for (i = 0; i < migf->nseg; i++) {
		if (off < migf->seg[i].len) {
			*src = migf->seg[i].buf + off;
			*n = migf->seg[i].len - off;
			migf->busy++;
			return 0;
		}
		off -= migf->seg[i].len;
	}
	*n = 0;
	return migf->state == NVMEVF_MIGF_PRECOPY ? -ENOMSG : 0;
}

/* @n bytes (possibly 0, after a failed copy) were read from the peek. */
static int nvmevf_save_consume(struct nvmevf_migf *migf, size_t n)
{
	guard(mutex)(&migf->lock);
	nvmevf_migf_unbusy(migf);
	if (nvmevf_migf_dead(migf))
		return -ENODEV;
	migf->pos += n;
	atomic64_add(n, &migf->nvmevf->stats.bytes_saved);
	if (migf->state == NVMEVF_MIGF_PRECOPY)
		atomic64_add(n, &migf->nvmevf->stats.bytes_precopy);
	return 0;
}

/*
 * The data is in kernel memory, produced by the arc: read() never waits, so
 * O_NONBLOCK needs nothing.  End of the precopy data is -ENOMSG, end of the
 * stream 0.
 */
static ssize_t nvmevf_save_read(struct file *filp, char __user *ubuf,
				size_t len, loff_t *ppos)
{
	struct nvmevf_migf *migf = filp->private_data;
	ssize_t done = 0;
	int ret = 0;

	if (ppos)
		return -ESPIPE;

	if (mutex_lock_interruptible(&migf->io_lock))
		return -ERESTARTSYS;
	while (len) {
		const u8 *src;
		size_t n;

		ret = nvmevf_save_peek(migf, &src, &n);
		if (ret || !n)
			break;
		n = min(n, len);
		if (copy_to_user(ubuf, src, n)) {
			nvmevf_save_consume(migf, 0);
			ret = -EFAULT;
			break;
		}
		ret = nvmevf_save_consume(migf, n);
		if (ret)
			break;
		done += n;
		ubuf += n;
		len -= n;
	}
	mutex_unlock(&migf->io_lock);
	return done ? done : ret;
}

static __poll_t nvmevf_save_poll(struct file *filp,
				 struct poll_table_struct *wait)
{
	struct nvmevf_migf *migf = filp->private_data;
	u64 total = 0;
	unsigned int i;

	poll_wait(filp, &migf->poll_wait, wait);
	guard(mutex)(&migf->lock);
	if (nvmevf_migf_dead(migf))
		return EPOLLERR | EPOLLHUP;
	/* at the end of the precopy data: wait for STOP_COPY's data */
	for (i = 0; i < migf->nseg; i++)
		total += migf->seg[i].len;
	if (migf->state == NVMEVF_MIGF_PRECOPY && migf->pos >= total)
		return 0;
	return EPOLLIN | EPOLLRDNORM;
}

static long nvmevf_precopy_info(struct nvmevf_migf *migf,
				struct vfio_precopy_info __user *uinfo)
{
	unsigned long minsz = offsetofend(struct vfio_precopy_info,
					  dirty_bytes);
	struct vfio_precopy_info info;

	if (copy_from_user(&info, uinfo, minsz))
		return -EFAULT;
	if (info.argsz < minsz)
		return -EINVAL;

	scoped_guard(mutex, &migf->lock) {
		if (nvmevf_migf_dead(migf))
			return -ENODEV;
		if (migf->state != NVMEVF_MIGF_PRECOPY)
			return -EINVAL;
		info.initial_bytes = migf->seg[0].len > migf->pos ?
				     migf->seg[0].len - migf->pos : 0;
	}
	/* no incremental state in TP4159: nothing ever becomes dirty */
	info.dirty_bytes = 0;
	info.flags = 0;
	return copy_to_user(uinfo, &info, minsz) ? -EFAULT : 0;
}

static long nvmevf_save_ioctl(struct file *filp, unsigned int cmd,
			      unsigned long arg)
{
	if (cmd != VFIO_MIG_GET_PRECOPY_INFO)
		return -ENOTTY;
	return nvmevf_precopy_info(filp->private_data, (void __user *)arg);
}

static const struct file_operations nvmevf_save_fops = {
	.owner = THIS_MODULE,
	.read = nvmevf_save_read,
	.poll = nvmevf_save_poll,
	.unlocked_ioctl = nvmevf_save_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.release = nvmevf_migf_release,
};

/* Where the next bytes go; busy until nvmevf_resume_advance(). */
static ssize_t nvmevf_resume_window(struct nvmevf_migf *migf, size_t want,
				    void **dst)
{
	ssize_t n;

	guard(mutex)(&migf->lock);
	if (nvmevf_migf_dead(migf))
		return -ENODEV;
	n = nvmevf_reader_window(&migf->rd, want, dst);
	if (n > 0)
		migf->busy++;
	return n;
}

/* @n bytes (possibly 0, after a failed copy) were placed in the window. */
static int nvmevf_resume_advance(struct nvmevf_migf *migf, size_t n)
{
	int ret;

	guard(mutex)(&migf->lock);
	nvmevf_migf_unbusy(migf);
	if (nvmevf_migf_dead(migf))
		return -ENODEV;
	if (!n)
		return 0;
	atomic64_add(n, &migf->nvmevf->stats.bytes_loaded);
	ret = nvmevf_reader_advance(&migf->rd, n);
	/* rate-limited: whoever writes the stream decides how often */
	if (ret)
		dev_warn_ratelimited(&migf->nvmevf->core_device.pdev->dev,
				     "migration stream refused at byte %llu: %s (%pe)\n",
				     migf->rd.total, migf->rd.why.msg,
				     ERR_PTR(ret));
	return ret;
}

static int nvmevf_commit_locked(struct nvmevf_pci_core_device *nvmevf,
				struct nvmevf_migf *migf);

/*
 * Once the end record is in, the state goes to the device from write():
 * a device that refuses it fails this write(), while the source can still
 * resume.  state_mutex is taken under io_lock, never the other way round.
 */
static int nvmevf_resume_commit(struct nvmevf_migf *migf)
{
	struct nvmevf_pci_core_device *nvmevf = migf->nvmevf;
	int ret;

	scoped_guard(mutex, &migf->lock) {
		if (migf->rd.phase != NVMEVF_RD_END || migf->committed)
			return 0;
	}
	if (mutex_lock_killable(&nvmevf->state_mutex))
		return -EINTR;
	ret = nvmevf_commit_locked(nvmevf, migf);
	mutex_unlock(&nvmevf->state_mutex);
	return ret;
}

/*
 * Writes may split the stream anywhere.  The bytes are copied straight to
 * where the parser keeps them (header staging or the record's buffer,
 * allocated from the record's size, bounded by NVMEVF_STREAM_MAX) and each
 * unit is validated when complete; the write() that completes the stream
 * also loads it into the device.
 */
static ssize_t nvmevf_resume_write(struct file *filp, const char __user *ubuf,
				   size_t len, loff_t *ppos)
{
	struct nvmevf_migf *migf = filp->private_data;
	ssize_t done = 0;
	int ret = 0;

	if (ppos)
		return -ESPIPE;

	if (mutex_lock_interruptible(&migf->io_lock))
		return -ERESTARTSYS;
	while (len) {
		ssize_t n;
		void *dst;

		n = nvmevf_resume_window(migf, len, &dst);
		if (n < 0) {
			ret = n;
			break;
		}
		if (dst && copy_from_user(dst, ubuf, n)) {
			nvmevf_resume_advance(migf, 0);
			ret = -EFAULT;
			break;
		}
		ret = nvmevf_resume_advance(migf, n);
		if (ret)
			break;
		done += n;
		ubuf += n;
		len -= n;
	}
	if (!ret)
		ret = nvmevf_resume_commit(migf);
	mutex_unlock(&migf->io_lock);
	/* a rejected stream or state is reported at once, not as a short write */
	if (ret && ret != -EFAULT)
		return ret;
	return done ? done : ret;
}

static __poll_t nvmevf_resume_poll(struct file *filp,
				   struct poll_table_struct *wait)
{
	struct nvmevf_migf *migf = filp->private_data;

	guard(mutex)(&migf->lock);
	if (nvmevf_migf_dead(migf))
		return EPOLLERR | EPOLLHUP;
	return EPOLLOUT | EPOLLWRNORM;
}

static const struct file_operations nvmevf_resume_fops = {
	.owner = THIS_MODULE,
	.write = nvmevf_resume_write,
	.poll = nvmevf_resume_poll,
	.release = nvmevf_migf_release,
};

/*
 * Give @migf a file and make it the device's @slot.  Consumes @migf: on
 * failure it is freed.  Returns the reference for the core to install.
 */
static struct file *nvmevf_migf_publish(struct nvmevf_migf *migf,
					const struct file_operations *fops,
					int flags, struct nvmevf_migf **slot)
{
	struct file *filp;

	filp = anon_inode_getfile("nvmevf_mig", fops, migf, flags);
	if (IS_ERR(filp)) {
		nvmevf_migf_free(migf);
		return filp;
	}
	migf->filp = filp;
	stream_open(filp->f_inode, filp);
	get_file(filp);
	*slot = migf;
	return filp;
}

/* Disable the file and drop the device's reference; buffers go now if idle. */
static void nvmevf_migf_put(struct nvmevf_migf **slot)
{
	struct nvmevf_migf *migf = *slot;

	if (!migf)
		return;
	scoped_guard(mutex, &migf->lock) {
		migf->state = NVMEVF_MIGF_DISABLED;
		if (!migf->busy)
			nvmevf_migf_free_bufs(migf);
	}
	wake_up_interruptible(&migf->poll_wait);
	*slot = NULL;
	fput(migf->filp);
}

/* ---- Device side: PF commands ---- */

/* Account for one PF operation of the FSM; returns its errno */
static int nvmevf_lm_done(struct nvmevf_pci_core_device *nvmevf,
			  enum nvmevf_cmd_kind kind, int status)
{
	lockdep_assert_held(&nvmevf->state_mutex);
	return nvmevf_pf_done(&nvmevf->stats.cmd, kind, status);
}

/* the last command reached the controller: its state may have changed */
static bool nvmevf_last_sent(struct nvmevf_pci_core_device *nvmevf)
{
	return nvmevf_status_sent(nvmevf->stats.cmd.last_status);
}

static void nvmevf_phase_done(struct nvmevf_pci_core_device *nvmevf,
			      enum nvmevf_phase ph, u64 start)
{
	nvmevf->stats.duration_ns[ph] = ktime_get_ns() - start;
}

/*
 * Suspend and Resume change the controller: when one reached the controller
 * and failed, what the controller does is unknown (ERROR).
 */
static int nvmevf_suspend(struct nvmevf_pci_core_device *nvmevf)
{
	u64 start = ktime_get_ns();
	int ret;

	ret = nvmevf_lm_done(nvmevf, NVMEVF_CK_SUSPEND,
			     nvme_pci_vf_suspend(nvmevf->core_device.pdev,
						 NVME_LM_STYPE_SUSPEND));
	if (ret && nvmevf_last_sent(nvmevf))
		nvmevf->lost = true;
	nvmevf_phase_done(nvmevf, NVMEVF_PH_SUSPEND, start);
	return ret;
}

static int nvmevf_resume(struct nvmevf_pci_core_device *nvmevf)
{
	u64 start = ktime_get_ns();
	int ret;

	ret = nvmevf_lm_done(nvmevf, NVMEVF_CK_RESUME,
			     nvme_pci_vf_resume(nvmevf->core_device.pdev));
	if (ret && nvmevf_last_sent(nvmevf))
		nvmevf->lost = true;
	if (!ret)
		nvmevf_dirty_resumed_locked(nvmevf);
	nvmevf_phase_done(nvmevf, NVMEVF_PH_RESUME, start);
	return ret;
}

/* Best effort, outside the statistics: "not suspended" is the usual answer. */
static void nvmevf_resume_quiet(struct nvmevf_pci_core_device *nvmevf)
{
	lockdep_assert_held(&nvmevf->state_mutex);
	nvme_pci_vf_resume(nvmevf->core_device.pdev);
	nvmevf_dirty_resumed_locked(nvmevf);
}

/*
 * The identity of one namespace, if it is attached to the VF (CNS 12h,
 * 11h and 03h, through nvme-pci).  Returns 1 if attached, 0 if not.
 */
static int nvmevf_collect_one_ns(struct nvmevf_pci_core_device *nvmevf,
				 u32 nsid, u8 *id, u8 *descs,
				 struct nvmevf_compat_ns *ns)
{
	int status, ret;

	status = nvme_pci_vf_ns_info(nvmevf->core_device.pdev, nsid,
				     (struct nvme_id_ns *)id, descs);
	if (status == -ENOENT) {
		/* answered: not attached to the VF */
		nvmevf_account(&nvmevf->stats.cmd, NVMEVF_CK_IDENTIFY, 0);
		return 0;
	}
	ret = nvmevf_lm_done(nvmevf, NVMEVF_CK_IDENTIFY, status);
	if (!ret)
		ret = nvmevf_id_ns_parse(id, NVME_IDENTIFY_DATA_SIZE, nsid, ns);
	if (ret)
		return ret;
	/*
	 * The UUID is only listed for a namespace the PF itself has attached
	 * (CNS 03h is about active NSIDs): otherwise it stays all zero, on
	 * both sides alike.
	 */
	ret = nvmevf_ns_desc_uuid(descs, NVME_IDENTIFY_DATA_SIZE, ns->uuid);
	if (ret && ret != -ENOENT)
		return ret;
	return 1;
}

/*
 * The namespaces attached to the VF: CNS 10h pages of allocated NSIDs,
 * CNS 12h for each.  Bounded by the PF's NN: NSIDs are ascending and at
 * most NN, so at most NN / 1024 + 1 pages are read, whatever the PF
 * returns.
 */
static int nvmevf_collect_ns(struct nvmevf_pci_core_device *nvmevf,
			     struct nvmevf_dev_info *info)
{
	u8 *list __free(kfree) = kmalloc(NVME_IDENTIFY_DATA_SIZE, GFP_KERNEL);
	u8 *id __free(kfree) = kmalloc(NVME_IDENTIFY_DATA_SIZE, GFP_KERNEL);
	u8 *descs __free(kfree) = kmalloc(NVME_IDENTIFY_DATA_SIZE, GFP_KERNEL);
	const u32 per_page = NVME_IDENTIFY_DATA_SIZE / sizeof(u32);
	struct pci_dev *pdev = nvmevf->core_device.pdev;
	u32 pages = nvmevf->nn / per_page + 1;
	u32 start = 0, nsid = 0;
	int n, i, ret;

	if (!list || !id || !descs)
		return -ENOMEM;
	info->nns = 0;
	do {
		if (!pages--)
			return -EIO;
		ret = nvmevf_lm_done(nvmevf, NVMEVF_CK_IDENTIFY,
				     nvme_pci_vf_ns_list(pdev, start,
							 (__le32 *)list));
		if (ret)
			return ret;
		n = nvmevf_nsid_list_parse(list, NVME_IDENTIFY_DATA_SIZE, start);
		if (n < 0)
			return n;
		for (i = 0; i < n; i++) {
			nsid = get_unaligned_le32(list + i * sizeof(u32));
			if (nsid > nvmevf->nn)
				return -EIO;
			struct nvmevf_compat_ns ns;

			ret = nvmevf_collect_one_ns(nvmevf, nsid, id, descs, &ns);
			if (ret < 0)
				return ret;
			if (!ret)
				continue;
			if (info->nns == NVMEVF_MAX_NS)
				return -E2BIG;
			info->ns[info->nns++] = ns;
		}
		start = nsid;
	} while (n == per_page && start < nvmevf->nn);
	nvmevf->nns_seen = info->nns;
	return 0;
}

/*
 * The identity of this VF as the compat record describes it; the PF's CNS
 * 20h data is kept for matching a source's formats.  Refreshes the cached
 * CSVI/CSUUIDI and NVQ/NVI.
 */
static int nvmevf_collect_info(struct nvmevf_pci_core_device *nvmevf,
			       struct nvmevf_dev_info *info)
{
	struct pci_dev *pdev = nvmevf->core_device.pdev;
	struct nvme_pci_vf_info vfi;
	u8 csvi, csuuidi;
	int ret;

	ret = nvmevf_lm_done(nvmevf, NVMEVF_CK_IDENTIFY,
			     nvme_pci_vf_info(pdev, &vfi));
	if (ret)
		return ret;
	if (vfi.scid != nvmevf->scid)
		return -ENXIO;
	BUILD_BUG_ON(sizeof(info->csf) != NVME_IDENTIFY_DATA_SIZE);
	ret = nvmevf_lm_done(nvmevf, NVMEVF_CK_IDENTIFY,
			     nvme_pci_vf_state_formats(pdev, info->csf));
	if (ret)
		return ret;
	nvmevf_parse_csf(info->csf, sizeof(info->csf),
			 NVMEVF_NVME_STATE_VERSION, &nvmevf->vs_uuid, &csvi,
			 &csuuidi);
	if (!csvi || !csuuidi)
		return -ENOEXEC;

	info->vendor = pdev->vendor;
	info->device = pdev->device;
	info->max_transfer = vfi.max_transfer;
	info->nvq = vfi.nvq;
	info->nvi = vfi.nvi;
	info->state_version = NVMEVF_NVME_STATE_VERSION;
	info->check_identity = READ_ONCE(ns_identity);
	uuid_copy(&info->vs_uuid, &nvmevf->vs_uuid);
	ret = nvmevf_collect_ns(nvmevf, info);
	if (ret)
		return ret;
	nvmevf->csvi = csvi;
	nvmevf->csuuidi = csuuidi;
	nvmevf->nvq = info->nvq;
	nvmevf->nvi = info->nvi;
	nvmevf->max_transfer = info->max_transfer;
	return 0;
}

/* Stream header and compat record: the precopy initial data. */
static int nvmevf_build_initial(struct nvmevf_pci_core_device *nvmevf,
				struct nvmevf_seg *seg)
{
	struct nvmevf_dev_info *info __free(kvfree) =
		kvzalloc(sizeof(*info), GFP_KERNEL);
	size_t clen, len;
	u8 *buf;
	int ret;

	if (!info)
		return -ENOMEM;
	ret = nvmevf_collect_info(nvmevf, info);
	if (ret)
		return ret;
	clen = nvmevf_compat_size(info->nns);
	len = sizeof(struct nvmevf_stream_hdr) + sizeof(struct nvmevf_rec_hdr) +
	      clen;
	buf = kvzalloc(len, GFP_KERNEL_ACCOUNT);
	if (!buf)
		return -ENOMEM;
	nvmevf_stream_hdr_fill((void *)buf);
	nvmevf_rec_hdr_fill((void *)(buf + sizeof(struct nvmevf_stream_hdr)),
			    NVMEVF_REC_COMPAT, 0, clen);
	nvmevf_compat_fill((void *)(buf + len - clen), info);
	seg->buf = buf;
	seg->len = len;
	return 0;
}

/* Get Controller State, header only: works while running. */
static int nvmevf_state_hdr(struct nvmevf_pci_core_device *nvmevf,
			    struct nvme_lm_state_hdr *hdr, bool consistent,
			    u64 *total)
{
	bool suspended = false;
	int ret;

	ret = nvmevf_lm_done(nvmevf, NVMEVF_CK_GET,
			     nvme_pci_vf_get_state(nvmevf->core_device.pdev,
						   nvmevf->csvi,
						   nvmevf->csuuidi, 0, hdr,
						   sizeof(*hdr), &suspended));
	if (ret)
		return ret;
	if (consistent && !suspended)
		return -EIO;
	return nvmevf_state_size(hdr, total);
}

/*
 * The controller state record (and the end record) into @seg.  The VF is
 * suspended: every chunk must report CSUP, i.e. the VF stayed suspended
 * for the whole command, so the chunks form one consistent snapshot.  The
 * state then passes the checks the destination will run (against this VF's
 * own resources): a malformed state fails here, not after the downtime.
 */
static int nvmevf_save_state(struct nvmevf_pci_core_device *nvmevf,
			     struct nvmevf_seg *seg)
{
	struct nvme_lm_state_hdr *hdr __free(kfree) =
		kmalloc(sizeof(*hdr), GFP_KERNEL);
	const size_t rec = sizeof(struct nvmevf_rec_hdr);
	struct nvmevf_why why;
	u64 start = ktime_get_ns();
	u64 total, done;
	u8 *buf, *state;
	int ret;
	u32 n;

	if (!hdr)
		return -ENOMEM;
	ret = nvmevf_state_hdr(nvmevf, hdr, true, &total);
	if (ret)
		return ret;

	buf = kvzalloc(rec + total + rec, GFP_KERNEL_ACCOUNT);
	if (!buf)
		return -ENOMEM;
	state = buf + rec;
	memcpy(state, hdr, sizeof(*hdr));
	for (done = sizeof(*hdr);
	     (n = nvmevf_chunk_len(total, done, nvmevf->max_transfer));
	     done += n) {
		bool suspended = false;

		ret = nvmevf_lm_done(nvmevf, NVMEVF_CK_GET,
				     nvme_pci_vf_get_state(nvmevf->core_device.pdev,
							   nvmevf->csvi,
							   nvmevf->csuuidi,
							   done, state + done,
							   n, &suspended));
		if (!ret && !suspended)
			ret = -EIO;
		if (ret)
			break;
	}
	if (!ret && done != total)
		ret = -EINVAL;
	if (!ret && nvmevf_state_check(state, total, nvmevf->nvq, nvmevf->nvi,
				       &why)) {
		pci_warn(nvmevf->core_device.pdev,
			 "the PF returned a malformed controller state: %s\n",
			 why.msg);
		ret = -EIO;
	}
	if (ret) {
		kvfree(buf);
		return ret;
	}
	nvmevf_rec_hdr_fill((void *)buf, NVMEVF_REC_CTRL_STATE, 0, total);
	nvmevf_rec_hdr_fill((void *)(state + total), NVMEVF_REC_END, 0, 0);
	seg->buf = buf;
	seg->len = rec + total + rec;
	nvmevf_phase_done(nvmevf, NVMEVF_PH_STOP_COPY, start);
	return 0;
}

/*
 * Set Controller State in SEQIND chunks of at most the PF's max_transfer.
 * A refused first chunk leaves the controller as it was; once a chunk was
 * taken, a failure leaves a partly received or partly applied state.
 */
static int nvmevf_set_state(struct nvmevf_pci_core_device *nvmevf, u8 *state,
			    u64 len, u8 csvi, u8 csuuidi)
{
	u64 done;
	int ret;
	u32 n;

	for (done = 0; (n = nvmevf_chunk_len(len, done, nvmevf->max_transfer));
	     done += n) {
		bool first = !done, last = done + n == len;
		enum nvme_lm_seqind seq;

		if (first)
			seq = last ? NVME_LM_SEQIND_ONLY : NVME_LM_SEQIND_FIRST;
		else
			seq = last ? NVME_LM_SEQIND_LAST : NVME_LM_SEQIND_MIDDLE;
		ret = nvmevf_lm_done(nvmevf, NVMEVF_CK_SET,
				     nvme_pci_vf_set_state(nvmevf->core_device.pdev,
							   csvi, csuuidi, seq,
							   done, state + done,
							   n));
		if (ret) {
			/*
			 * Refused (an NVMe status) first chunk: nothing taken.
			 * A later chunk, or one cancelled once sent: unknown.
			 */
			if (!first || (nvmevf_last_sent(nvmevf) &&
				       nvmevf->stats.cmd.last_status < 0))
				nvmevf->lost = true;
			return ret;
		}
	}
	return done == len ? 0 : -EINVAL;
}

static bool nvmevf_in_d0(struct pci_dev *pdev)
{
	u16 pmcsr;

	if (!pdev->pm_cap)
		return true;
	pci_read_config_word(pdev, pdev->pm_cap + PCI_PM_CTRL, &pmcsr);
	return !(pmcsr & PCI_PM_CTRL_STATE_MASK);
}

/*
 * A Controller Level Reset through the VF's CC.EN, then Suspend again.
 *
 * A controller that runs a loaded state, or that its user enabled, has I/O
 * queues, and TP4159 refuses Set Controller State then (Invalid Field):
 * STOP -> RESUMING makes the VF fresh first.  A CLR clears the queues and
 * the suspended state; the disabled controller is suspended again at once.
 * The BAR is touched only when memory_lock can be had without waiting (a
 * reset or a config change by the user is in progress otherwise), so no
 * lock order with the core's reset path is created.
 */
static int nvmevf_clr_locked(struct nvmevf_pci_core_device *nvmevf)
{
	struct vfio_pci_core_device *vdev = &nvmevf->core_device;
	void __iomem *bar;
	u32 cc, csts;
	u64 cap, timeout_us;
	int ret;

	bar = vfio_pci_core_get_iomap(vdev, 0);
	if (IS_ERR(bar))
		return PTR_ERR(bar);
	if (!down_read_trylock(&vdev->memory_lock))
		return -EBUSY;
	/* BAR0 decodes only in D0 (a VF has no memory enable of its own) */
	if (vdev->pm_runtime_engaged || !nvmevf_in_d0(vdev->pdev)) {
		up_read(&vdev->memory_lock);
		return -EBUSY;
	}
	cc = readl(bar + NVME_REG_CC);
	if (cc == ~0U || !(cc & NVME_CC_ENABLE)) {
		up_read(&vdev->memory_lock);
		return cc == ~0U ? -EIO : 0;
	}
	cap = lo_hi_readq(bar + NVME_REG_CAP);
	timeout_us = (NVME_CAP_TIMEOUT(cap) + 1) * 500 * USEC_PER_MSEC;
	writel(cc & ~NVME_CC_ENABLE, bar + NVME_REG_CC);
	nvmevf->lost = true;
	ret = readl_poll_timeout(bar + NVME_REG_CSTS, csts,
				 csts == ~0U || !(csts & NVME_CSTS_RDY),
				 USEC_PER_MSEC, timeout_us);
	up_read(&vdev->memory_lock);
	if (!ret && csts == ~0U)
		ret = -EIO;
	if (ret) {
		pci_warn(vdev->pdev, "controller reset before RESUMING failed: %d\n",
			 ret);
		return ret;
	}
	pci_dbg(vdev->pdev, "controller reset before RESUMING\n");
	ret = nvmevf_suspend(nvmevf);
	if (!ret)
		nvmevf->lost = false;
	return ret;
}

/* ---- The FSM ---- */

static void nvmevf_put_files_locked(struct nvmevf_pci_core_device *nvmevf)
{
	lockdep_assert_held(&nvmevf->state_mutex);
	nvmevf_migf_put(&nvmevf->saving);
	nvmevf_migf_put(&nvmevf->resuming);
}

/* The one reset: no files, RUNNING, PF events forgotten. */
static void nvmevf_reset_locked(struct nvmevf_pci_core_device *nvmevf)
{
	nvmevf_put_files_locked(nvmevf);
	nvmevf->mig_state = VFIO_DEVICE_STATE_RUNNING;
	nvmevf->lost = false;
	clear_bit(NVMEVF_LM_PF_EVENT, &nvmevf->lm_flags);
}

/* The controller's state is unknown: only a reset leaves ERROR. */
static void nvmevf_fail_locked(struct nvmevf_pci_core_device *nvmevf)
{
	lockdep_assert_held(&nvmevf->state_mutex);
	nvmevf_put_files_locked(nvmevf);
	nvmevf->mig_state = VFIO_DEVICE_STATE_ERROR;
	nvmevf->lost = false;
}

static void nvmevf_failed_locked(struct nvmevf_pci_core_device *nvmevf,
				 int err)
{
	nvmevf->stats.failed_arcs++;
	nvmevf->stats.last_error = err;
	if (nvmevf->lost)
		nvmevf_fail_locked(nvmevf);
}

/*
 * After a reset of the VF, RUNNING must mean running: a reset only clears
 * the suspended state of the controller if no Suspend was still draining,
 * and the PF may complete that Suspend after the reset.  The Resume is sent
 * from reset_work (reset_done runs under the core's memory_lock) or by the
 * next user of state_mutex that needs the device, whichever comes first.
 *
 * nvme-pci sends no command for the VF while an earlier one it gave up on
 * (a timed out Suspend the controller did not abort) is still with the
 * controller, and fails the Resume with -EBUSY after a timeout.  The Resume
 * then stays pending and NVMEVF_LM_RESUME_WAIT set: the PF event that
 * reports such a command's end (or the PF's return after a reset) queues
 * reset_work, which sends it again (@again); the other users skip it rather
 * than each wait a timeout.  The bit is set before the Resume is sent, so
 * an event that comes while it is in flight is not lost.
 */
static void nvmevf_flush_resume_locked(struct nvmevf_pci_core_device *nvmevf,
				       bool again)
{
	struct pci_dev *pdev = nvmevf->core_device.pdev;
	int ret;

	lockdep_assert_held(&nvmevf->state_mutex);
	if (!nvmevf->resume_pending || nvmevf->resetting)
		return;
	if (!again && test_bit(NVMEVF_LM_RESUME_WAIT, &nvmevf->lm_flags))
		return;
	if (nvmevf->mig_state == VFIO_DEVICE_STATE_RUNNING) {
		set_bit(NVMEVF_LM_RESUME_WAIT, &nvmevf->lm_flags);
		ret = nvme_pci_vf_resume(pdev);
		if (ret == -EBUSY) {
			nvmevf->stats.deferred_resumes++;
			pci_info(pdev,
				 "Resume after reset deferred: an earlier command is still with the controller\n");
			return;
		}
		nvmevf_dirty_resumed_locked(nvmevf);
	}
	clear_bit(NVMEVF_LM_RESUME_WAIT, &nvmevf->lm_flags);
	nvmevf->resume_pending = false;
	nvmevf_dirty_flush_stop_locked(nvmevf);
}

static struct file *nvmevf_save_start(struct nvmevf_pci_core_device *nvmevf,
				      bool precopy)
{
	struct nvmevf_migf *migf;
	u64 start = ktime_get_ns();
	int ret;

	migf = nvmevf_migf_alloc(nvmevf, precopy ? NVMEVF_MIGF_PRECOPY :
						   NVMEVF_MIGF_COMPLETE);
	if (!migf)
		return ERR_PTR(-ENOMEM);
	ret = nvmevf_build_initial(nvmevf, &migf->seg[0]);
	migf->nseg = 1;
	if (!ret && precopy)
		nvmevf_phase_done(nvmevf, NVMEVF_PH_PRECOPY, start);
	if (!ret && !precopy) {
		ret = nvmevf_save_state(nvmevf, &migf->seg[1]);
		migf->nseg = 2;
	}
	if (ret) {
		nvmevf_migf_free(migf);
		return ERR_PTR(ret);
	}
	return nvmevf_migf_publish(migf, &nvmevf_save_fops, O_RDONLY,
				   &nvmevf->saving);
}

/* PRE_COPY_P2P -> STOP_COPY: append the state to the precopy file. */
static int nvmevf_save_finish(struct nvmevf_pci_core_device *nvmevf)
{
	struct nvmevf_migf *migf = nvmevf->saving;
	struct nvmevf_seg seg;
	int ret;

	if (WARN_ON(!migf))
		return -EINVAL;
	ret = nvmevf_save_state(nvmevf, &seg);
	if (ret)
		return ret;
	guard(mutex)(&migf->lock);
	if (migf->state != NVMEVF_MIGF_PRECOPY) {
		kvfree(seg.buf);
		return -ENODEV;
	}
	migf->seg[1] = seg;
	migf->nseg = 2;
	migf->state = NVMEVF_MIGF_COMPLETE;
	wake_up_interruptible(&migf->poll_wait);
	return 0;
}

static struct file *
nvmevf_resume_start(struct nvmevf_pci_core_device *nvmevf)
{
	struct nvmevf_migf *migf;
	u64 start = ktime_get_ns();
	int ret;

	ret = nvmevf_clr_locked(nvmevf);
	if (ret)
		return ERR_PTR(ret);
	migf = nvmevf_migf_alloc(nvmevf, NVMEVF_MIGF_RESUMING);
	if (!migf)
		return ERR_PTR(-ENOMEM);
	migf->info = kvzalloc_obj(*migf->info, GFP_KERNEL_ACCOUNT);
	ret = migf->info ? nvmevf_collect_info(nvmevf, migf->info) : -ENOMEM;
	if (ret) {
		nvmevf_migf_free(migf);
		return ERR_PTR(ret);
	}
	nvmevf_reader_init(&migf->rd, migf->info);
	nvmevf_phase_done(nvmevf, NVMEVF_PH_RESUMING, start);
	return nvmevf_migf_publish(migf, &nvmevf_resume_fops, O_WRONLY,
				   &nvmevf->resuming);
}

/*
 * The stream is complete: validate it as a whole against the destination,
 * then Set Controller State.  A state the device refuses is the stream's
 * error from then on (RESUMING -> STOP returns it); one that it took in
 * part leaves ERROR.  No user copy happens here: the record buffer is
 * frozen once the end record is in.
 */
static int nvmevf_commit_locked(struct nvmevf_pci_core_device *nvmevf,
				struct nvmevf_migf *migf)
{
	u64 start = ktime_get_ns();
	int ret;

	lockdep_assert_held(&nvmevf->state_mutex);
	scoped_guard(mutex, &migf->lock) {
		if (nvmevf_migf_dead(migf))
			return -ENODEV;
		if (migf->committed)
			return 0;
		ret = nvmevf_reader_finish(&migf->rd);
		if (ret) {
			/* a stream refused on arrival was logged by write() */
			if (migf->rd.phase != NVMEVF_RD_ERROR)
				dev_warn_ratelimited(&nvmevf->core_device.pdev->dev,
						     "migration stream refused: %s (%pe)\n",
						     migf->rd.why.msg, ERR_PTR(ret));
			return ret;
		}
	}
	ret = nvmevf_set_state(nvmevf, migf->rd.state, migf->rd.state_len,
			       migf->rd.csvi, migf->rd.csuuidi);
	nvmevf_phase_done(nvmevf, NVMEVF_PH_LOAD, start);
	if (ret) {
		pci_info(nvmevf->core_device.pdev,
			 "the PF refused the controller state: %d\n", ret);
		nvmevf->stats.last_error = ret;
		if (nvmevf->lost) {
			nvmevf_fail_locked(nvmevf);
			return ret;
		}
		scoped_guard(mutex, &migf->lock)
			nvmevf_reader_fail(&migf->rd, ret);
		return ret;
	}
	scoped_guard(mutex, &migf->lock)
		migf->committed = true;
	return 0;
}

/*
 * RESUMING -> STOP: the state was loaded by the write() that ended the
 * stream; only a stream whose commit was interrupted is loaded here.  A
 * stream that is incomplete or was refused fails the arc with its errno and
 * the device stays in RESUMING, also when the error came after the commit
 * (bytes after the end record): the first error sticks.
 */
static int nvmevf_load(struct nvmevf_pci_core_device *nvmevf)
{
	struct nvmevf_migf *migf = nvmevf->resuming;
	bool ended;

	if (WARN_ON(!migf))
		return -EINVAL;
	scoped_guard(mutex, &migf->lock) {
		if (migf->rd.phase == NVMEVF_RD_ERROR)
			return migf->rd.err;
		if (migf->committed)
			return 0;
		ended = migf->rd.phase == NVMEVF_RD_END;
	}
	return ended ? nvmevf_commit_locked(nvmevf, migf) : -EINVAL;
}

static struct file *nvmevf_step_locked(struct nvmevf_pci_core_device *nvmevf,
				       enum vfio_device_mig_state new)
{
	enum vfio_device_mig_state cur = nvmevf->mig_state;
	int ret;

	if (test_bit(NVMEVF_LM_PF_EVENT, &nvmevf->lm_flags))
		return ERR_PTR(-ENODEV);

	if ((cur == VFIO_DEVICE_STATE_RUNNING &&
	     new == VFIO_DEVICE_STATE_RUNNING_P2P) ||
	    (cur == VFIO_DEVICE_STATE_PRE_COPY &&
	     new == VFIO_DEVICE_STATE_PRE_COPY_P2P)) {
		ret = nvmevf_suspend(nvmevf);
		return ret ? ERR_PTR(ret) : NULL;
	}

	if ((cur == VFIO_DEVICE_STATE_RUNNING_P2P &&
	     new == VFIO_DEVICE_STATE_RUNNING) ||
	    (cur == VFIO_DEVICE_STATE_PRE_COPY_P2P &&
	     new == VFIO_DEVICE_STATE_PRE_COPY)) {
		ret = nvmevf_resume(nvmevf);
		return ret ? ERR_PTR(ret) : NULL;
	}

	if ((cur == VFIO_DEVICE_STATE_RUNNING_P2P &&
	     new == VFIO_DEVICE_STATE_STOP) ||
	    (cur == VFIO_DEVICE_STATE_STOP &&
	     new == VFIO_DEVICE_STATE_RUNNING_P2P))
		return NULL;

	if ((cur == VFIO_DEVICE_STATE_RUNNING &&
	     new == VFIO_DEVICE_STATE_PRE_COPY) ||
	    (cur == VFIO_DEVICE_STATE_RUNNING_P2P &&
	     new == VFIO_DEVICE_STATE_PRE_COPY_P2P))
		return nvmevf_save_start(nvmevf, true);

	if ((cur == VFIO_DEVICE_STATE_PRE_COPY &&
	     new == VFIO_DEVICE_STATE_RUNNING) ||
	    (cur == VFIO_DEVICE_STATE_PRE_COPY_P2P &&
	     new == VFIO_DEVICE_STATE_RUNNING_P2P) ||
	    (cur == VFIO_DEVICE_STATE_STOP_COPY &&
	     new == VFIO_DEVICE_STATE_STOP)) {
		nvmevf_migf_put(&nvmevf->saving);
		return NULL;
	}

	if (cur == VFIO_DEVICE_STATE_STOP && new == VFIO_DEVICE_STATE_STOP_COPY)
		return nvmevf_save_start(nvmevf, false);

	if (cur == VFIO_DEVICE_STATE_PRE_COPY_P2P &&
	    new == VFIO_DEVICE_STATE_STOP_COPY) {
		ret = nvmevf_save_finish(nvmevf);
		return ret ? ERR_PTR(ret) : NULL;
	}

	if (cur == VFIO_DEVICE_STATE_STOP && new == VFIO_DEVICE_STATE_RESUMING)
		return nvmevf_resume_start(nvmevf);

	if (cur == VFIO_DEVICE_STATE_RESUMING && new == VFIO_DEVICE_STATE_STOP) {
		ret = nvmevf_load(nvmevf);
		if (ret)
			return ERR_PTR(ret);
		nvmevf_migf_put(&nvmevf->resuming);
		return NULL;
	}

	/* vfio_mig_get_next_state() only hands out the arcs above */
	WARN_ON(true);
	return ERR_PTR(-EINVAL);
}

/*
 * Error policy: a failed arc returns its errno and the device stays in the
 * last state reached (the core's recover_state arcs then work); only an arc
 * that left the controller in an unknown state (nvmevf->lost: a Suspend or
 * Resume that reached the controller and failed, a partly applied Set
 * Controller State, a failed controller reset) or a PF event enters ERROR.
 */
static struct file *nvmevf_set_mig_state(struct vfio_device *vdev,
					 enum vfio_device_mig_state new)
{
	struct nvmevf_pci_core_device *nvmevf = nvmevf_of(vdev);
	enum vfio_device_mig_state next;
	struct file *res = NULL;
	int ret;

	if (mutex_lock_killable(&nvmevf->state_mutex))
		return ERR_PTR(-EINTR);
	nvmevf_flush_resume_locked(nvmevf, false);
	/* only a reset leaves ERROR (the core WARNs on an arc from it) */
	if (nvmevf->mig_state == VFIO_DEVICE_STATE_ERROR) {
		res = ERR_PTR(-EINVAL);
		goto out;
	}
	/* the files are gone and the VF is in FLR: the state follows it */
	if (nvmevf->resetting) {
		res = ERR_PTR(-EBUSY);
		goto out;
	}
	while (new != nvmevf->mig_state) {
		ret = vfio_mig_get_next_state(vdev, nvmevf->mig_state, new,
					      &next);
		if (ret) {
			res = ERR_PTR(ret);
			break;
		}
		res = nvmevf_step_locked(nvmevf, next);
		if (IS_ERR(res)) {
			pci_dbg(nvmevf->core_device.pdev,
				"migration arc %d -> %d failed: %ld\n",
				nvmevf->mig_state, next, PTR_ERR(res));
			nvmevf_failed_locked(nvmevf, PTR_ERR(res));
			break;
		}
		nvmevf->mig_state = next;
		if (WARN_ON(res && new != next)) {
			fput(res);
			res = ERR_PTR(-EINVAL);
			break;
		}
	}
out:
	mutex_unlock(&nvmevf->state_mutex);
	return res;
}

static int nvmevf_get_mig_state(struct vfio_device *vdev,
				enum vfio_device_mig_state *state)
{
	struct nvmevf_pci_core_device *nvmevf = nvmevf_of(vdev);

	if (mutex_lock_killable(&nvmevf->state_mutex))
		return -EINTR;
	nvmevf_flush_resume_locked(nvmevf, false);
	*state = nvmevf->mig_state;
	mutex_unlock(&nvmevf->state_mutex);
	return 0;
}

/*
 * Bytes still to come in STOP_COPY: the device's current state size (the
 * Controller State header, read even while running) plus the records
 * around it and whatever of the initial data is unread.
 */
static int nvmevf_data_size_locked(struct nvmevf_pci_core_device *nvmevf,
				   struct nvme_lm_state_hdr *hdr,
				   unsigned long *stop_copy_length)
{
	struct nvmevf_migf *migf = nvmevf->saving;
	u64 start = ktime_get_ns();
	u64 total, extra;
	unsigned int i;
	int ret;

	if (test_bit(NVMEVF_LM_PF_EVENT, &nvmevf->lm_flags))
		return -ENODEV;
	if (migf) {
		guard(mutex)(&migf->lock);
		if (migf->state == NVMEVF_MIGF_COMPLETE) {
			for (i = 0, total = 0; i < migf->nseg; i++)
				total += migf->seg[i].len;
			*stop_copy_length = total - migf->pos;
			nvmevf->stats.last_data_size = *stop_copy_length;
			return 0;
		}
	}

	ret = nvmevf_state_hdr(nvmevf, hdr, false, &total);
	if (ret)
		return ret;
	extra = 2 * sizeof(struct nvmevf_rec_hdr);
	if (migf) {
		guard(mutex)(&migf->lock);
		if (migf->seg[0].len > migf->pos)
			extra += migf->seg[0].len - migf->pos;
	} else {
		extra += sizeof(struct nvmevf_stream_hdr) +
			 sizeof(struct nvmevf_rec_hdr) +
			 nvmevf_compat_size(nvmevf->nns_seen);
	}
	*stop_copy_length = total + extra;
	nvmevf->stats.last_data_size = *stop_copy_length;
	nvmevf_phase_done(nvmevf, NVMEVF_PH_DATA_SIZE, start);
	return 0;
}

static int nvmevf_get_data_size(struct vfio_device *vdev,
				unsigned long *stop_copy_length)
{
	struct nvmevf_pci_core_device *nvmevf = nvmevf_of(vdev);
	struct nvme_lm_state_hdr *hdr __free(kfree) =
		kmalloc(sizeof(*hdr), GFP_KERNEL);
	int ret;

	if (!hdr)
		return -ENOMEM;
	if (mutex_lock_killable(&nvmevf->state_mutex))
		return -EINTR;
	nvmevf_flush_resume_locked(nvmevf, false);
	if (nvmevf->resetting)
		ret = -EBUSY;
	else
		ret = nvmevf_data_size_locked(nvmevf, hdr, stop_copy_length);
	mutex_unlock(&nvmevf->state_mutex);
	return ret;
}

static const struct vfio_migration_ops nvmevf_mig_ops = {
	.migration_set_state = nvmevf_set_mig_state,
	.migration_get_state = nvmevf_get_mig_state,
	.migration_get_data_size = nvmevf_get_data_size,
};

/* ---- Hooks for main.c ---- */

/*
 * A PF reset or removal during a migration (any state but RUNNING): fail
 * the files and report ERROR until the device is reset.  A device that is
 * just RUNNING has no migration to fail and keeps its state: the driver
 * does not change state by itself.  Runs from a work item since the
 * notifier may not block on state_mutex (an arc holds it across PF
 * commands the reset cancels).  The event is consumed first, so one that
 * arrives while the work runs queues it again.
 */
static void nvmevf_pf_work(struct work_struct *work)
{
	struct nvmevf_pci_core_device *nvmevf =
		container_of(work, struct nvmevf_pci_core_device, pf_work);

	guard(mutex)(&nvmevf->state_mutex);
	if (!test_and_clear_bit(NVMEVF_LM_PF_EVENT, &nvmevf->lm_flags))
		return;
	nvmevf_dirty_pf_lost_locked(nvmevf);
	if (nvmevf->is_open &&
	    nvmevf->mig_state != VFIO_DEVICE_STATE_RUNNING) {
		pci_warn(nvmevf->core_device.pdev,
			 "PF reset or removed: migration in ERROR until the device is reset\n");
		nvmevf_fail_locked(nvmevf);
	}
}

static void nvmevf_reset_work(struct work_struct *work)
{
	struct nvmevf_pci_core_device *nvmevf =
		container_of(work, struct nvmevf_pci_core_device, reset_work);

	guard(mutex)(&nvmevf->state_mutex);
	/* a reset that began since: its reset_done queues this again */
	if (nvmevf->resetting)
		return;
	nvmevf_flush_resume_locked(nvmevf, true);
	nvmevf_dirty_flush_stop_locked(nvmevf);
}

/**
 * nvmevf_lm_pf_event() - a PF event, from the PF notifier
 * @nvmevf: the device
 * @event: enum nvme_pci_pf_event
 *
 * A reset of the PF fails a migration in progress (pf_work).  The PF's
 * return, and the end of a VF command left to the controller, let a
 * deferred Resume go (reset_work).
 *
 * Context: atomic, from the PF's reset worker or a command's completion:
 * must not block, issue or wait for PF commands, so it only flags the
 * event (open files fail at once) and queues the work that applies it.
 */
void nvmevf_lm_pf_event(struct nvmevf_pci_core_device *nvmevf,
			unsigned long event)
{
	if (!nvmevf->migratable)
		return;
	switch (event) {
	case NVME_PCI_PF_RESETTING:
		set_bit(NVMEVF_LM_PF_EVENT, &nvmevf->lm_flags);
		schedule_work(&nvmevf->pf_work);
		break;
	case NVME_PCI_PF_LIVE:
	case NVME_PCI_PF_VF_CMD_ENDED:
		/* a deferred Resume may go now */
		if (test_bit(NVMEVF_LM_RESUME_WAIT, &nvmevf->lm_flags))
			schedule_work(&nvmevf->reset_work);
		break;
	}
}

/**
 * nvmevf_lm_init_dev() - initialise the migration part of a device
 * @nvmevf: the device, from vfio_device_ops.init
 */
void nvmevf_lm_init_dev(struct nvmevf_pci_core_device *nvmevf)
{
	mutex_init(&nvmevf->state_mutex);
	INIT_WORK(&nvmevf->pf_work, nvmevf_pf_work);
	INIT_WORK(&nvmevf->reset_work, nvmevf_reset_work);
	nvmevf->mig_state = VFIO_DEVICE_STATE_RUNNING;
	nvmevf_dirty_init(nvmevf);
}

/**
 * nvmevf_lm_release_dev() - tear down what nvmevf_lm_init_dev() set up
 * @nvmevf: the device, from vfio_device_ops.release
 */
void nvmevf_lm_release_dev(struct nvmevf_pci_core_device *nvmevf)
{
	mutex_destroy(&nvmevf->state_mutex);
}

static int nvmevf_lm_probe_pf(struct nvmevf_pci_core_device *nvmevf,
			      const char **why)
{
	u8 *buf __free(kfree) = kzalloc(NVME_IDENTIFY_DATA_SIZE, GFP_KERNEL);
	struct nvmevf_dev_info *info __free(kvfree) =
		kvzalloc(sizeof(*info), GFP_KERNEL);
	struct pci_dev *pdev = nvmevf->core_device.pdev;
	struct nvme_id_ctrl *id = (void *)buf;
	u16 oacs;
	int ret;

	guard(mutex)(&nvmevf->state_mutex);
	*why = "no controller ID for the VF";
	if (!nvmevf->has_scid)
		return -ENOENT;
	*why = "out of memory";
	if (!buf || !info)
		return -ENOMEM;

	*why = "Identify Controller of the PF failed";
	ret = nvmevf_lm_done(nvmevf, NVMEVF_CK_IDENTIFY,
			     nvme_pci_vf_id_ctrl(pdev, id));
	if (ret)
		return ret;
	oacs = le16_to_cpu(id->oacs);
	*why = "the PF is not a migration management controller (OACS.HMLMS)";
	if (!(oacs & NVME_CTRL_OACS_HMLMS))
		return -EOPNOTSUPP;
	*why = "the PF has no Namespace Management (OACS bit 3: no CNS 10h-12h)";
	if (!(oacs & NVME_CTRL_OACS_NS_MNGT_SUPP))
		return -EOPNOTSUPP;
	nvmevf->nn = le32_to_cpu(id->nn);
	nvmevf_dirty_probe(nvmevf, id, nvmevf->max_transfer);

	*why = "Identify Supported Controller State Formats failed";
	ret = nvmevf_lm_done(nvmevf, NVMEVF_CK_IDENTIFY,
			     nvme_pci_vf_state_formats(pdev, buf));
	if (ret)
		return ret;
	*why = "the PF offers no vendor specific controller state format";
	ret = nvmevf_csf_uuid(buf, NVME_IDENTIFY_DATA_SIZE, 1,
			      &nvmevf->vs_uuid);
	if (ret)
		return -EOPNOTSUPP;
	*why = "the PF does not offer NVMe controller state version 0";
	nvmevf_parse_csf(buf, NVME_IDENTIFY_DATA_SIZE,
			 NVMEVF_NVME_STATE_VERSION, &nvmevf->vs_uuid,
			 &nvmevf->csvi, &nvmevf->csuuidi);
	if (!nvmevf->csvi || !nvmevf->csuuidi)
		return -EOPNOTSUPP;

	/* everything a save or resume start collects, once */
	ret = nvmevf_collect_info(nvmevf, info);
	if (ret == -E2BIG)
		*why = "more namespaces attached than a migration stream carries (64)";
	else if (ret)
		*why = "the VF's namespaces could not be identified through the PF";
	return ret;
}

/**
 * nvmevf_lm_probe() - decide whether the VF can be migrated
 * @nvmevf: the device, before vfio_pci_core_register_device()
 *
 * Everything migration needs is checked once, here: the VF's SCID is
 * known, its PF is a Migration Management Controller (Identify Controller
 * OACS.HMLMS) with Namespace Management (CNS 10h-12h), the PF's Identify
 * CNS 20h offers NVMe controller state version 0 and at least one vendor
 * specific state format (the first is used), and the VF's identity -
 * resources and attached namespaces, at most NVMEVF_MAX_NS - can be
 * collected through the PF entry point.  Otherwise the device is
 * registered without migration, says why in one log line and behaves as
 * vfio-pci: probe never fails for this.
 */
void nvmevf_lm_probe(struct nvmevf_pci_core_device *nvmevf)
{
	struct vfio_device *vdev = &nvmevf->core_device.vdev;
	const char *why;
	int ret;

	ret = nvmevf_lm_probe_pf(nvmevf, &why);
	if (ret) {
		pci_info(nvmevf->core_device.pdev,
			 "live migration not supported: %s (%d)\n", why, ret);
		vdev->log_ops = NULL;
		return;
	}
	nvmevf->migratable = true;
	vdev->migration_flags = VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P |
				VFIO_MIGRATION_PRE_COPY;
	vdev->mig_ops = &nvmevf_mig_ops;
}

/**
 * nvmevf_lm_remove() - wait for the works, send a pending tracking stop
 * @nvmevf: the device, after the PF notifier is unregistered
 */
void nvmevf_lm_remove(struct nvmevf_pci_core_device *nvmevf)
{
	cancel_work_sync(&nvmevf->pf_work);
	cancel_work_sync(&nvmevf->reset_work);
	if (!nvmevf->migratable)
		return;
	/*
	 * A tracking stop still pending (the VF stayed suspended): resume the
	 * VF and send it, so the PF's NMMRTD budget does not leak.
	 */
	guard(mutex)(&nvmevf->state_mutex);
	if (nvmevf->dirty.stop_pending) {
		nvmevf_resume_quiet(nvmevf);
		if (nvmevf->dirty.stop_pending)
			pci_warn(nvmevf->core_device.pdev,
				 "memory tracking could not be stopped\n");
	}
}

/**
 * nvmevf_lm_open() - the vfio device is being opened
 * @nvmevf: the device, after vfio_pci_core_enable() (which reset the VF)
 */
void nvmevf_lm_open(struct nvmevf_pci_core_device *nvmevf)
{
	if (!nvmevf->migratable)
		return;
	guard(mutex)(&nvmevf->state_mutex);
	nvmevf_reset_locked(nvmevf);
	nvmevf_flush_resume_locked(nvmevf, false);
	nvmevf->is_open = true;
}

/**
 * nvmevf_lm_close() - the vfio device is being closed
 * @nvmevf: the device, before vfio_pci_core_close_device()
 *
 * Disables the migration files (their read/write fail with -ENODEV) and
 * returns the FSM to RUNNING.  A VF left in a suspended state (every state
 * but RUNNING and PRE_COPY) is resumed, best effort: the core resets the VF
 * on close only when it can, and the next user must not find a controller
 * that fetches nothing.
 */
void nvmevf_lm_close(struct nvmevf_pci_core_device *nvmevf)
{
	if (!nvmevf->migratable)
		return;
	guard(mutex)(&nvmevf->state_mutex);
	if (nvmevf->mig_state != VFIO_DEVICE_STATE_RUNNING &&
	    nvmevf->mig_state != VFIO_DEVICE_STATE_PRE_COPY)
		nvmevf_resume_quiet(nvmevf);
	nvmevf_dirty_reset_locked(nvmevf, true);
	nvmevf_reset_locked(nvmevf);
	/* a deferred Resume is still sent when its wait ends */
	if (!test_bit(NVMEVF_LM_RESUME_WAIT, &nvmevf->lm_flags))
		nvmevf->resume_pending = false;
	nvmevf->is_open = false;
}

/**
 * nvmevf_lm_reset_prepare() - the VF is about to be reset
 * @nvmevf: the device
 *
 * The migration files end before the controller is reset: a write() that
 * completes a stream loads it with Set Controller State under state_mutex,
 * which must not reach the PF while the VF is in FLR.  From here on their
 * fds return -ENODEV.  Until nvmevf_lm_reset_done() no PF command is sent
 * for the VF: arcs, MIG_DATA_SIZE and DMA logging fail with -EBUSY (they
 * are not serialised with VFIO_DEVICE_RESET), and the Resume of an earlier
 * reset waits for this one's end.
 *
 * Context: pci_error_handlers.reset_prepare, the same context and locks as
 * nvmevf_lm_reset_done().
 */
void nvmevf_lm_reset_prepare(struct nvmevf_pci_core_device *nvmevf)
{
	if (!nvmevf->migratable)
		return;
	guard(mutex)(&nvmevf->state_mutex);
	nvmevf_put_files_locked(nvmevf);
	nvmevf->resetting = true;
}

/**
 * nvmevf_lm_reset_done() - the VF was reset (VFIO_DEVICE_RESET, FLR)
 * @nvmevf: the device
 *
 * Context: pci_error_handlers.reset_done, with the core's memory_lock held
 * for VFIO_DEVICE_RESET: state_mutex never nests a user copy nor waits for
 * memory_lock, so taking it here cannot deadlock.  No PF command is sent
 * here: the Resume that follows a reset is left to reset_work (or to the
 * next arc, whichever runs first).
 */
void nvmevf_lm_reset_done(struct nvmevf_pci_core_device *nvmevf)
{
	if (!nvmevf->migratable)
		return;
	guard(mutex)(&nvmevf->state_mutex);
	nvmevf->resetting = false;
	nvmevf_reset_locked(nvmevf);
	nvmevf_dirty_reset_locked(nvmevf, false);
	nvmevf->resume_pending = true;
	schedule_work(&nvmevf->reset_work);
}

#ifdef CONFIG_VFIO_DEBUGFS
static const char * const nvmevf_phase_names[NVMEVF_PH_NUM] = {
	[NVMEVF_PH_SUSPEND] = "suspend",
	[NVMEVF_PH_RESUME] = "resume",
	[NVMEVF_PH_PRECOPY] = "precopy",
	[NVMEVF_PH_STOP_COPY] = "stop_copy",
	[NVMEVF_PH_RESUMING] = "resuming",
	[NVMEVF_PH_LOAD] = "load",
	[NVMEVF_PH_DATA_SIZE] = "data_size",
};

static int nvmevf_lm_stats_show(struct seq_file *m, void *unused)
{
	struct nvmevf_pci_core_device *nvmevf = m->private;
	struct nvmevf_lm_stats *st = &nvmevf->stats;
	unsigned int i;

	guard(mutex)(&nvmevf->state_mutex);
	seq_printf(m, "csvi: %u\ncsuuidi: %u\nvendor_state: %pUb\n",
		   nvmevf->csvi, nvmevf->csuuidi, &nvmevf->vs_uuid);
	seq_printf(m, "commands: %llu\ncommand_errors: %llu\n",
		   st->cmd.commands, st->cmd.errors);
	for (i = 0; i < NVMEVF_CK_NUM; i++)
		seq_printf(m, "commands_%s: %llu\n", nvmevf_cmd_kind_names[i],
			   st->cmd.by_kind[i]);
	if (st->cmd.last_status < 0)
		seq_printf(m, "last_status: %d\n", st->cmd.last_status);
	else
		seq_printf(m, "last_status: 0x%x\n", st->cmd.last_status);
	seq_printf(m, "failed_arcs: %llu\nlast_error: %d\n",
		   st->failed_arcs, st->last_error);
	seq_printf(m, "deferred_resumes: %llu\nresume_pending: %d\n",
		   st->deferred_resumes, nvmevf->resume_pending);
	seq_printf(m, "bytes_saved: %lld\nbytes_precopy: %lld\n",
		   atomic64_read(&st->bytes_saved),
		   atomic64_read(&st->bytes_precopy));
	seq_printf(m, "bytes_loaded: %lld\nlast_data_size: %llu\n",
		   atomic64_read(&st->bytes_loaded), st->last_data_size);
	seq_printf(m, "files_holding_buffers: %d\n",
		   atomic_read(&st->files_holding));
	seq_printf(m, "dma_logging: %s\n",
		   nvmevf->core_device.vdev.log_ops ?
		   (nvmevf->dirty.active ? "active" : "idle") : "unsupported");
	seq_printf(m, "dirty_stop_pending: %d\ndirty_granule: %llu\n",
		   nvmevf->dirty.stop_pending, (u64)SZ_4K << nvmevf->dirty.rmrtg);
	seq_printf(m, "dirty_ranges: %u\ndirty_tracked_bytes: %llu\n",
		   nvmevf->dirty.nranges, nvmevf->dirty.tracked_bytes);
	seq_printf(m, "dirty_starts: %llu\ndirty_receives: %llu\n",
		   nvmevf->dirty.starts, nvmevf->dirty.receives);
	seq_printf(m, "dirty_granules: %llu\ndirty_reported: %llu\n",
		   nvmevf->dirty.granules, nvmevf->dirty.reported);
	seq_printf(m, "dirty_pending_chunks: %llu\n",
		   nvmevf->dirty.pending_chunks);
	seq_printf(m, "dirty_reads: %llu\ndirty_read_ns: %llu\n",
		   nvmevf->dirty.reads, nvmevf->dirty.read_ns);
	seq_printf(m, "dirty_windows_skipped: %llu\ndirty_recv_ns: %llu\n",
		   nvmevf->dirty.skipped, nvmevf->dirty.recv_ns);
	for (i = 0; i < NVMEVF_PH_NUM; i++)
		seq_printf(m, "%s_us: %llu\n", nvmevf_phase_names[i],
			   div_u64(st->duration_ns[i], NSEC_PER_USEC));
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(nvmevf_lm_stats);

/**
 * nvmevf_lm_debugfs_init() - <debugfs>/vfio/<VF>/migration/nvme
 * @nvmevf: the device, after registration (the core made migration/)
 */
void nvmevf_lm_debugfs_init(struct nvmevf_pci_core_device *nvmevf)
{
	struct dentry *root = nvmevf->core_device.vdev.debug_root, *mig;

	if (!nvmevf->migratable || IS_ERR_OR_NULL(root))
		return;
	mig = debugfs_lookup("migration", root);
	if (IS_ERR_OR_NULL(mig))
		return;
	debugfs_create_file("nvme", 0400, mig, nvmevf, &nvmevf_lm_stats_fops);
	dput(mig);
}
#else
void nvmevf_lm_debugfs_init(struct nvmevf_pci_core_device *nvmevf)
{
}
#endif
