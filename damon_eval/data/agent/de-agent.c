// SPDX-License-Identifier: GPL-2.0
/*
 * de-agent: the only damon-eval process inside a guest while a workload runs.
 *
 *   de-agent run  --out DIR [options] -- CMD ARGS...   launch, hold, sample, time
 *   de-agent hold [--fifo PATH] [--target-comm NAME] -- CMD ARGS...
 *                                                       launcher for `parsecmgmt -s`
 *
 * Design (docs/agent.md has the full protocol):
 * - One process, fixed buffers, no allocation per sample, so its RSS stays a
 *   few hundred KiB and it does not show up as memory overhead.
 * - The workload is held stopped right after execve() (ptrace TRACEME), so
 *   DAMON can target its pid before it runs its first instruction.
 * - The host releases it with `go` on the control channel (virtio-serial
 *   port or FIFO) or with SIGUSR1.
 * - Every interval one CSV row of /proc and DAMON sysfs counters is appended
 *   to DIR/samples.csv; an optional tracefs trace_pipe is streamed to a file.
 *
 * Builds with: gcc -std=c11 -O2 [-static] -Wall -Wextra -Werror
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define AGENT_VERSION "2"
#define MAX_PROCS 32768
#define MAX_SCHEMES_COLUMNS 8
#define MAX_SCHEMES 64
#define PATH_CAP 4096
#define CTL_OUT_CAP 8192
#define LINE_CAP 4096
#define TRACE_CHUNK 65536
#define TRACE_FLUSH_BYTES (1 << 20)
#define HOLD_FIFO_ENV "DE_AGENT_HOLD_FIFO"
#define EXIT_OK 0
#define EXIT_WORKLOAD_FAILED 1
#define EXIT_HARNESS 2

/* ------------------------------------------------------------------ */
/* small utilities                                                    */
/* ------------------------------------------------------------------ */

static double mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void fatal(const char *fmt, ...)
{
	va_list ap;

	fputs("de-agent: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(EXIT_HARNESS);
}

/* write() all of buf; returns 0 or -1 */
static int write_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = write(fd, buf, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Read a whole (small) file into buf, NUL-terminated; returns length or -1. */
static ssize_t read_small(const char *path, char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t len = 0;

	if (fd < 0)
		return -1;
	while (len + 1 < cap) {
		ssize_t n = read(fd, buf + len, cap - 1 - len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			close(fd);
			return -1;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	buf[len] = '\0';
	return (ssize_t)len;
}

static int read_ll_file(const char *path, long long *out)
{
	char buf[64];
	char *end;

	if (read_small(path, buf, sizeof(buf)) <= 0)
		return -1;
	errno = 0;
	*out = strtoll(buf, &end, 10);
	if (errno || end == buf)
		return -1;
	return 0;
}

static int write_str_file(const char *path, const char *value)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	int ret;

	if (fd < 0)
		return -1;
	ret = write_all(fd, value, strlen(value));
	close(fd);
	return ret;
}

/* Atomic text file: write DIR/.name.tmp, fsync, rename. */
static int write_atomic(const char *path, const char *text)
{
	char tmp[PATH_CAP];
	int fd;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return -1;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	if (write_all(fd, text, strlen(text)) || fsync(fd)) {
		close(fd);
		unlink(tmp);
		return -1;
	}
	close(fd);
	return rename(tmp, path);
}

/* Value after "key" (which includes its separator) in a /proc text. */
static int find_field(const char *text, const char *key, unsigned long long *out)
{
	const char *p = text;
	size_t klen = strlen(key);

	while ((p = strstr(p, key)) != NULL) {
		if (p == text || p[-1] == '\n') {
			char *end;

			p += klen;
			while (*p == ' ' || *p == '\t')
				p++;
			*out = strtoull(p, &end, 10);
			return end == p ? -1 : 0;
		}
		p += klen;
	}
	return -1;
}

/*
 * Parse /proc/<pid>/stat: ppid, utime+stime and rss (pages).  The comm
 * field may hold spaces and parentheses, so fields count from the last ')'.
 */
struct proc_stat {
	int ppid;
	char state;
	unsigned long long ticks;
	long long rss_pages;
};

static int parse_proc_stat(const char *buf, struct proc_stat *ps)
{
	const char *p = strrchr(buf, ')');
	unsigned long long utime = 0, stime = 0;
	int field = 2;

	if (!p)
		return -1;
	p++;
	memset(ps, 0, sizeof(*ps));
	while (*p) {
		char *end;

		while (*p == ' ')
			p++;
		if (!*p)
			break;
		field++;
		if (field == 3) {
			ps->state = *p;
			end = (char *)p + 1;
		} else {
			long long v = strtoll(p, &end, 10);

			if (end == p)
				return -1;
			if (field == 4)
				ps->ppid = (int)v;
			else if (field == 14)
				utime = (unsigned long long)v;
			else if (field == 15)
				stime = (unsigned long long)v;
			else if (field == 24) {
				ps->rss_pages = v;
				break;
			}
		}
		while (*end && *end != ' ')
			end++;
		p = end;
	}
	ps->ticks = utime + stime;
	return field >= 24 ? 0 : -1;
}

static int read_proc_stat(int pid, struct proc_stat *ps)
{
	char path[64];
	char buf[1024];

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if (read_small(path, buf, sizeof(buf)) <= 0)
		return -1;
	return parse_proc_stat(buf, ps);
}

/*
 * VmRSS of a process in KiB (0 for zombies and kernel threads).  The rss
 * field of /proc/<pid>/stat and statm comes from per-CPU counters that can be
 * off by hundreds of pages on recent kernels; VmRSS is the exact sum.
 */
static long long vmrss_kib(int pid)
{
	char path[64];
	char buf[4096];
	unsigned long long kib = 0;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	if (read_small(path, buf, sizeof(buf)) <= 0)
		return 0;
	if (find_field(buf, "VmRSS:", &kib))
		return 0;
	return (long long)kib;
}

static void restore_child_signals(void)
{
	sigset_t none;
	int sig;

	for (sig = 1; sig < NSIG; sig++) {
		if (sig == SIGKILL || sig == SIGSTOP)
			continue;
		signal(sig, SIG_DFL);
	}
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

/* Report from a child between fork and exec, over a close-on-exec pipe. */
enum child_stage { STAGE_LOG = 1, STAGE_CHDIR, STAGE_TRACEME, STAGE_EXEC };
struct child_failure {
	int stage;
	int err;
};

static const char *stage_name(int stage)
{
	switch (stage) {
	case STAGE_LOG: return "open workload log";
	case STAGE_CHDIR: return "chdir";
	case STAGE_TRACEME: return "ptrace(PTRACE_TRACEME)";
	default: return "exec";
	}
}

static void child_fail(int pipe_fd, int stage)
{
	struct child_failure f = { stage, errno };

	if (write(pipe_fd, &f, sizeof(f)) < 0)
		_exit(127);
	_exit(127);
}

/* ------------------------------------------------------------------ */
/* `run` state                                                        */
/* ------------------------------------------------------------------ */

enum hold_mode { HOLD_EXEC, HOLD_CHILD, HOLD_NONE };
enum phase { PH_WAIT_HELD, PH_HELD, PH_RUNNING, PH_DRAIN, PH_DONE };

static struct {
	const char *out_dir;
	long interval_ms;
	const char *control;
	double timeout_s;
	double wait_timeout_s;
	char trace_pipe[PATH_CAP];
	char record[PATH_CAP];
	char kdamond_dir[PATH_CAP];
	enum hold_mode hold;
	int drop_caches;
	const char *workload_log;
	const char *cwd;
	int detach;
	char **cmd;
} opt = {
	.interval_ms = 1000,
	.wait_timeout_s = 600,
	.hold = HOLD_EXEC,
};

static struct {
	enum phase phase;
	int self_pid;
	int top_pid;        /* the command the agent forked */
	int target_pid;     /* what DAMON targets: top_pid or the held benchmark */
	int launcher_pid;   /* `de-agent hold` process (child mode) */
	int top_exited;
	int top_wstatus;
	int target_exited;
	int target_wstatus;
	int pending_sig;    /* signal the held target received, redelivered at release */
	double start_mono;  /* agent start */
	double release_mono;
	double end_mono;
	double runtime_s;
	double deadline;    /* timeout or wait timeout, 0 if none */
	double kill_grace_until;
	double vanished_at;
	char status[32];
	char error[512];
	/* fds */
	int sfd, ctl_fd, ctl_is_dev, hold_fd, trace_fd, record_fd, samples_fd, events_fd;
	double ctl_mute_until;
	char ctl_out[CTL_OUT_CAP];
	size_t ctl_out_len;
	char ctl_in[LINE_CAP];
	size_t ctl_in_len;
	char hold_in[LINE_CAP];
	size_t hold_in_len;
	/* sampling */
	double next_sample;
	long nr_samples;
	int nr_scheme_cols;
	long long kd_pid;
	unsigned long long kd_ticks_base, kd_ticks_cur;
	unsigned long long damos_last[MAX_SCHEMES][5];
	int damos_valid;
	int damos_warned;
	unsigned long long record_pending;
	unsigned long long record_bytes;
	off_t samples_synced;
} st;

static const char *const damos_stat_names[5] = {
	"nr_tried", "sz_tried", "nr_applied", "sz_applied", "qt_exceeds",
};

static char g_line[LINE_CAP];
static char g_path[PATH_CAP];
static char g_big[16384];
static char g_trace_buf[TRACE_CHUNK];
static int p_pid[MAX_PROCS], p_ppid[MAX_PROCS];
static unsigned char p_mark[MAX_PROCS];
static int p_count;

static void out_path(char *buf, size_t cap, const char *name)
{
	if (snprintf(buf, cap, "%s/%s", opt.out_dir, name) >= (int)cap)
		fatal("path too long: %s/%s", opt.out_dir, name);
}

/* events.log line: "<mono_s> <dir> <text>" with dir '>' sent, '<' received, '#' note */
static void log_event(char dir, const char *text)
{
	char line[LINE_CAP + 64];
	int n;

	if (st.events_fd < 0)
		return;
	n = snprintf(line, sizeof(line), "%.6f %c %s\n", mono_now(), dir, text);
	if (n > 0)
		write_all(st.events_fd, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

static void note(const char *fmt, ...)
{
	char text[LINE_CAP];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	log_event('#', text);
}

static void ctl_flush(void)
{
	while (st.ctl_fd >= 0 && st.ctl_is_dev && st.ctl_out_len) {
		ssize_t n = write(st.ctl_fd, st.ctl_out, st.ctl_out_len);

		if (n <= 0) {
			if (n < 0 && errno == EINTR)
				continue;
			return; /* EAGAIN: host not connected yet; retry later */
		}
		memmove(st.ctl_out, st.ctl_out + n, st.ctl_out_len - (size_t)n);
		st.ctl_out_len -= (size_t)n;
	}
}

/* A protocol message to the host: logged, and queued on the control device. */
static void emit(const char *fmt, ...)
{
	char text[LINE_CAP];
	size_t len;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	/* messages are one line: fold newlines */
	for (char *p = text; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	log_event('>', text);
	if (st.ctl_fd < 0 || !st.ctl_is_dev)
		return;
	len = strlen(text);
	if (st.ctl_out_len + len + 1 > sizeof(st.ctl_out)) {
		note("control output full; dropped: %s", text);
		return;
	}
	memcpy(st.ctl_out + st.ctl_out_len, text, len);
	st.ctl_out[st.ctl_out_len + len] = '\n';
	st.ctl_out_len += len + 1;
	ctl_flush();
}

/* ------------------------------------------------------------------ */
/* process tree                                                       */
/* ------------------------------------------------------------------ */

struct linux_dirent64 {
	uint64_t d_ino;
	int64_t d_off;
	unsigned short d_reclen;
	unsigned char d_type;
	char d_name[];
};

/* Snapshot of every process: pid, ppid, rss.  Fixed arrays, getdents64. */
static void scan_procs(void)
{
	static int proc_fd = -1;
	static char dents[32768];
	struct proc_stat ps;

	p_count = 0;
	if (proc_fd < 0)
		proc_fd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (proc_fd < 0)
		return;
	lseek(proc_fd, 0, SEEK_SET);
	for (;;) {
		long n = syscall(SYS_getdents64, proc_fd, dents, sizeof(dents));

		if (n <= 0)
			break;
		for (long off = 0; off < n;) {
			struct linux_dirent64 *d = (struct linux_dirent64 *)(dents + off);
			char *end;
			long pid;

			off += d->d_reclen;
			if (d->d_name[0] < '1' || d->d_name[0] > '9')
				continue;
			pid = strtol(d->d_name, &end, 10);
			if (*end || p_count >= MAX_PROCS)
				continue;
			if (read_proc_stat((int)pid, &ps))
				continue;
			p_pid[p_count] = (int)pid;
			p_ppid[p_count] = ps.ppid;
			p_mark[p_count] = 0;
			p_count++;
		}
	}
}

/*
 * Mark the tree: roots are `root_pid` (if > 0) and, when `children_of` > 0,
 * every child of that pid except `exclude`.  Returns the number marked.
 */
static int mark_tree(int root_pid, int children_of, int exclude)
{
	int changed = 1, marked = 0;

	for (int i = 0; i < p_count; i++) {
		if ((root_pid > 0 && p_pid[i] == root_pid) ||
		    (children_of > 0 && p_ppid[i] == children_of && p_pid[i] != exclude)) {
			p_mark[i] = 1;
			marked++;
		}
	}
	while (changed) {
		changed = 0;
		for (int i = 0; i < p_count; i++) {
			if (p_mark[i] || p_pid[i] == exclude)
				continue;
			for (int j = 0; j < p_count; j++) {
				if (p_mark[j] && p_pid[j] == p_ppid[i]) {
					p_mark[i] = 1;
					marked++;
					changed = 1;
					break;
				}
			}
		}
	}
	return marked;
}

/* RSS of the workload's tree in KiB, and how many processes it has. */
static long long workload_rss_kib(int *nr_procs)
{
	long long kib = 0;
	int n = 0;

	scan_procs();
	if (opt.hold == HOLD_CHILD)
		mark_tree(st.target_pid, 0, 0);
	else
		/* the workload plus orphans reparented to us (we are a subreaper) */
		mark_tree(0, st.self_pid, st.launcher_pid);
	for (int i = 0; i < p_count; i++) {
		if (p_mark[i]) {
			kib += vmrss_kib(p_pid[i]);
			n++;
		}
	}
	*nr_procs = n;
	return kib;
}

/* Signal the whole workload: its process group and every descendant of ours. */
static void kill_workload(int sig)
{
	/* once the group leader is reaped its id may be reused: rely on the tree scan */
	if (st.top_pid > 0 && !st.top_exited)
		kill(-st.top_pid, sig);
	scan_procs();
	mark_tree(0, st.self_pid, 0);
	for (int i = 0; i < p_count; i++)
		if (p_mark[i])
			kill(p_pid[i], sig);
}

/* ------------------------------------------------------------------ */
/* samplers                                                           */
/* ------------------------------------------------------------------ */

/* g_path = <kdamond-dir>/<suffix>; -1 if too long */
static int kd_path(const char *suffix)
{
	int n = snprintf(g_path, sizeof(g_path), "%s/%s", opt.kdamond_dir, suffix);

	return n < 0 || n >= (int)sizeof(g_path) ? -1 : 0;
}

static void sample_kdamond(long long *pid_out, unsigned long long *ticks_out)
{
	long long pid = -1;
	struct proc_stat ps;

	*pid_out = -1;
	if (!opt.kdamond_dir[0])
		return;
	if (kd_path("pid") == 0 && read_ll_file(g_path, &pid) == 0 && pid > 0 && read_proc_stat((int)pid, &ps) == 0) {
		if (pid != st.kd_pid && st.kd_pid > 0)
			st.kd_ticks_base += st.kd_ticks_cur; /* a new kdamond: keep the old one's time */
		st.kd_pid = pid;
		st.kd_ticks_cur = ps.ticks;
	}
	/* once the kdamond stops (its target exited) keep its last value */
	*pid_out = st.kd_pid;
	*ticks_out = st.kd_ticks_base + st.kd_ticks_cur;
}

static int nr_schemes(void)
{
	long long n = 0;

	if (kd_path("contexts/0/schemes/nr_schemes") || read_ll_file(g_path, &n))
		return 0;
	return n < 0 ? 0 : (n > MAX_SCHEMES ? MAX_SCHEMES : (int)n);
}

static void sample_damos(void)
{
	int n;

	if (!opt.kdamond_dir[0])
		return;
	n = nr_schemes();
	if (n == 0)
		return; /* rec/prec: no schemes, no need to wake the kdamond */
	if ((kd_path("state") || write_str_file(g_path, "update_schemes_stats")) &&
	    !st.damos_warned) {
		/* normal once the kdamond stopped: keep the last values */
		note("update_schemes_stats failed: %s", strerror(errno));
		st.damos_warned = 1;
	}
	for (int s = 0; s < n; s++) {
		for (int k = 0; k < 5; k++) {
			char suffix[96];
			long long v;

			snprintf(suffix, sizeof(suffix), "contexts/0/schemes/%d/stats/%s", s,
				 damos_stat_names[k]);
			if (kd_path(suffix) == 0 && read_ll_file(g_path, &v) == 0 && v >= 0)
				st.damos_last[s][k] = (unsigned long long)v;
		}
	}
	if (n > st.damos_valid)
		st.damos_valid = n;
}

static void write_header(void)
{
	int len;

	st.nr_scheme_cols = opt.kdamond_dir[0] ? nr_schemes() : 0;
	if (st.nr_scheme_cols > MAX_SCHEMES_COLUMNS)
		st.nr_scheme_cols = MAX_SCHEMES_COLUMNS;
	len = snprintf(g_line, sizeof(g_line),
		       "t_s,memfree_kib,memtotal_kib,anon_huge_kib,pswpin,pswpout,pgmajfault,"
		       "rss_tree_kib,nr_procs,kdamond_pid,kdamond_cpu_ticks,clk_tck,"
		       "damos_nr_tried,damos_sz_tried,damos_nr_applied,damos_sz_applied,"
		       "damos_qt_exceeds,agent_rss_kib");
	for (int s = 0; s < st.nr_scheme_cols; s++)
		for (int k = 0; k < 5; k++)
			len += snprintf(g_line + len, sizeof(g_line) - (size_t)len, ",s%d_%s", s,
					damos_stat_names[k]);
	g_line[len++] = '\n';
	write_all(st.samples_fd, g_line, (size_t)len);
}

/* Push written data of a growing file out of the page cache (it would count as memused). */
static void drop_written(int fd, off_t upto)
{
	if (fd < 0)
		return;
	fdatasync(fd);
	posix_fadvise(fd, 0, upto, POSIX_FADV_DONTNEED);
}

/* One sample row.  `t` is seconds since release. */
static void take_sample(double t)
{
	unsigned long long memfree = 0, memtotal = 0, anon_huge = 0;
	unsigned long long pswpin = 0, pswpout = 0, pgmajfault = 0;
	unsigned long long kd_ticks = 0;
	long long kd_pid = -1, rss, agent_rss;
	int nr_procs = 0, len, have_damos;

	if (read_small("/proc/meminfo", g_big, sizeof(g_big)) > 0) {
		find_field(g_big, "MemFree:", &memfree);
		find_field(g_big, "MemTotal:", &memtotal);
		find_field(g_big, "AnonHugePages:", &anon_huge);
	}
	if (read_small("/proc/vmstat", g_big, sizeof(g_big)) > 0) {
		find_field(g_big, "pswpin ", &pswpin);
		find_field(g_big, "pswpout ", &pswpout);
		find_field(g_big, "pgmajfault ", &pgmajfault);
	}
	rss = workload_rss_kib(&nr_procs);
	sample_kdamond(&kd_pid, &kd_ticks);
	sample_damos();
	agent_rss = vmrss_kib(st.self_pid);
	if (st.launcher_pid > 0)
		agent_rss += vmrss_kib(st.launcher_pid);

	len = snprintf(g_line, sizeof(g_line), "%.3f,%llu,%llu,%llu,%llu,%llu,%llu,%lld,%d,",
		       t, memfree, memtotal, anon_huge, pswpin, pswpout, pgmajfault, rss, nr_procs);
	if (kd_pid > 0)
		len += snprintf(g_line + len, sizeof(g_line) - (size_t)len, "%lld,%llu,%ld,", kd_pid,
				kd_ticks, sysconf(_SC_CLK_TCK));
	else
		len += snprintf(g_line + len, sizeof(g_line) - (size_t)len, ",,%ld,",
				sysconf(_SC_CLK_TCK));
	have_damos = opt.kdamond_dir[0] && st.damos_valid > 0;
	for (int k = 0; k < 5; k++) {
		unsigned long long sum = 0;

		for (int s = 0; s < st.damos_valid; s++)
			sum += st.damos_last[s][k];
		if (have_damos)
			len += snprintf(g_line + len, sizeof(g_line) - (size_t)len, "%llu,", sum);
		else
			g_line[len++] = ',';
	}
	len += snprintf(g_line + len, sizeof(g_line) - (size_t)len, "%lld", agent_rss);
	for (int s = 0; s < st.nr_scheme_cols; s++)
		for (int k = 0; k < 5; k++)
			len += snprintf(g_line + len, sizeof(g_line) - (size_t)len, ",%llu",
					st.damos_last[s][k]);
	g_line[len++] = '\n';
	write_all(st.samples_fd, g_line, (size_t)len);
	st.nr_samples++;
	if (st.nr_samples % 60 == 0) {
		off_t end = lseek(st.samples_fd, 0, SEEK_CUR);

		drop_written(st.samples_fd, end);
	}
}

/* ------------------------------------------------------------------ */
/* trace streaming                                                    */
/* ------------------------------------------------------------------ */

static int open_maybe_fifo(const char *path, int extra_flags)
{
	struct stat sb;
	int flags = O_RDONLY;

	/* a FIFO opened read-write never reports EOF when its writer goes away */
	if (stat(path, &sb) == 0 && S_ISFIFO(sb.st_mode))
		flags = O_RDWR;
	return open(path, flags | O_NONBLOCK | O_CLOEXEC | extra_flags);
}

static void trace_open(void)
{
	if (!opt.trace_pipe[0])
		return;
	if (!opt.record[0])
		out_path(opt.record, sizeof(opt.record), "trace.txt");
	st.trace_fd = open_maybe_fifo(opt.trace_pipe, 0);
	if (st.trace_fd < 0) {
		note("cannot open trace pipe %s: %s", opt.trace_pipe, strerror(errno));
		emit("error cannot open trace pipe %s: %s", opt.trace_pipe, strerror(errno));
		return;
	}
	st.record_fd = open(opt.record, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (st.record_fd < 0) {
		emit("error cannot open record %s: %s", opt.record, strerror(errno));
		close(st.trace_fd);
		st.trace_fd = -1;
	}
}

static void trace_sync(void)
{
	if (st.record_fd < 0 || !st.record_pending)
		return;
	drop_written(st.record_fd, (off_t)st.record_bytes);
	st.record_pending = 0;
}

/* Copy what trace_pipe has now; raw lines, unchanged. */
static void trace_drain(void)
{
	if (st.trace_fd < 0)
		return;
	for (int round = 0; round < 64; round++) {
		ssize_t n = read(st.trace_fd, g_trace_buf, sizeof(g_trace_buf));

		if (n <= 0)
			break;
		if (write_all(st.record_fd, g_trace_buf, (size_t)n)) {
			note("record write failed: %s", strerror(errno));
			break;
		}
		st.record_bytes += (unsigned long long)n;
		st.record_pending += (unsigned long long)n;
		if (st.record_pending >= TRACE_FLUSH_BYTES)
			trace_sync();
	}
}

/* ------------------------------------------------------------------ */
/* life cycle                                                         */
/* ------------------------------------------------------------------ */

static void set_status(const char *status, const char *fmt, ...)
{
	if (st.status[0])
		return; /* the first cause wins */
	snprintf(st.status, sizeof(st.status), "%s", status);
	if (fmt) {
		va_list ap;

		va_start(ap, fmt);
		vsnprintf(st.error, sizeof(st.error), fmt, ap);
		va_end(ap);
	}
}

static void status_from_wait(int wstatus)
{
	if (WIFEXITED(wstatus)) {
		if (WEXITSTATUS(wstatus) == 0)
			set_status("ok", NULL);
		else
			set_status("failed", "exit status %d", WEXITSTATUS(wstatus));
	} else if (WIFSIGNALED(wstatus)) {
		set_status("killed", "killed by signal %d (%s)", WTERMSIG(wstatus),
			   strsignal(WTERMSIG(wstatus)));
	}
}

static void begin_kill(const char *status, const char *why)
{
	set_status(status, "%s", why);
	note("stopping workload: %s", why);
	kill_workload(SIGTERM);
	if (st.launcher_pid > 0 && st.phase == PH_HELD)
		kill(st.launcher_pid, SIGKILL);
	st.kill_grace_until = mono_now() + 3.0;
	st.deadline = 0;
}

static void maybe_drop_caches(void)
{
	if (!opt.drop_caches)
		return;
	sync();
	if (write_str_file("/proc/sys/vm/drop_caches", "3"))
		note("drop_caches failed: %s", strerror(errno));
}

static void release(void)
{
	/* sample 0 is taken while the target is still stopped: the baseline */
	write_header();
	maybe_drop_caches();
	trace_open();
	trace_drain();
	st.release_mono = mono_now();
	take_sample(0.0);
	st.release_mono = mono_now();
	if (opt.hold == HOLD_EXEC) {
		if (ptrace(PTRACE_DETACH, st.target_pid, NULL,
			   (void *)(intptr_t)st.pending_sig))
			note("PTRACE_DETACH failed: %s", strerror(errno));
	} else if (opt.hold == HOLD_CHILD) {
		if (kill(st.launcher_pid, SIGUSR1))
			note("cannot release launcher %d: %s", st.launcher_pid, strerror(errno));
	}
	st.phase = PH_RUNNING;
	st.next_sample = st.release_mono + opt.interval_ms / 1000.0;
	st.deadline = opt.timeout_s > 0 ? st.release_mono + opt.timeout_s : 0;
	emit("started %d", st.target_pid);
}

static void target_finished(double end, int wstatus, double runtime)
{
	if (st.target_exited)
		return;
	st.target_exited = 1;
	st.target_wstatus = wstatus;
	st.end_mono = end;
	st.runtime_s = runtime;
	status_from_wait(wstatus);
	trace_drain();
	take_sample(end - st.release_mono);
	note("target %d finished after %.6f s", st.target_pid, runtime);
	if (opt.hold == HOLD_CHILD && !st.top_exited && st.kill_grace_until == 0)
		st.deadline = end + 30; /* let the wrapper (parsecmgmt) finish */
}

static void became_held(int pid)
{
	char buf[32];

	st.target_pid = pid;
	st.phase = PH_HELD;
	snprintf(buf, sizeof(buf), "%d\n", pid);
	out_path(g_path, sizeof(g_path), "target.pid");
	if (write_atomic(g_path, buf))
		note("cannot write target.pid: %s", strerror(errno));
	st.deadline = opt.wait_timeout_s > 0 ? mono_now() + opt.wait_timeout_s : 0;
	emit("ready %d", pid);
}

/* `go [key=value ...]`: parameters may override paths given on the command line. */
static int apply_go(char *args)
{
	char *save = NULL;

	for (char *tok = strtok_r(args, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
		char *eq = strchr(tok, '=');
		char *end;

		if (!eq) {
			emit("error bad go parameter '%s': expected key=value", tok);
			return -1;
		}
		*eq = '\0';
		if (!strcmp(tok, "kdamond_dir"))
			snprintf(opt.kdamond_dir, sizeof(opt.kdamond_dir), "%s", eq + 1);
		else if (!strcmp(tok, "trace_pipe"))
			snprintf(opt.trace_pipe, sizeof(opt.trace_pipe), "%s", eq + 1);
		else if (!strcmp(tok, "record"))
			snprintf(opt.record, sizeof(opt.record), "%s", eq + 1);
		else if (!strcmp(tok, "timeout_s")) {
			opt.timeout_s = strtod(eq + 1, &end);
			if (*end || opt.timeout_s < 0) {
				emit("error bad go timeout_s '%s'", eq + 1);
				return -1;
			}
		} else if (!strcmp(tok, "interval_ms")) {
			long v = strtol(eq + 1, &end, 10);

			if (*end || v <= 0) {
				emit("error bad go interval_ms '%s'", eq + 1);
				return -1;
			}
			opt.interval_ms = v;
		} else {
			emit("error unknown go parameter '%s'; valid: kdamond_dir trace_pipe record "
			     "timeout_s interval_ms", tok);
			return -1;
		}
	}
	return 0;
}

static void handle_command(char *line)
{
	char *args;

	log_event('<', line);
	args = strchr(line, ' ');
	if (args)
		*args++ = '\0';
	else
		args = line + strlen(line);
	if (!strcmp(line, "go")) {
		if (st.phase != PH_HELD) {
			emit("error go: nothing is held");
			return;
		}
		if (apply_go(args) == 0)
			release();
	} else if (!strcmp(line, "abort")) {
		if (st.phase < PH_DRAIN)
			begin_kill("aborted", "abort requested by host");
	} else if (!strcmp(line, "ping")) {
		static const char *names[] = { "waiting", "held", "running", "finishing", "done" };

		emit("pong %s %d", names[st.phase], st.target_pid);
	} else if (line[0]) {
		emit("error unknown command '%s'; valid: go abort ping", line);
	}
}

/* Split buffered input into lines; `fn` gets each complete line. */
static void feed_lines(char *buf, size_t *len, const char *data, size_t n, void (*fn)(char *))
{
	for (size_t i = 0; i < n; i++) {
		char c = data[i];

		if (c == '\n' || c == '\r') {
			buf[*len] = '\0';
			if (*len)
				fn(buf);
			*len = 0;
		} else if (*len + 1 < LINE_CAP) {
			buf[(*len)++] = c;
		}
	}
}

static void handle_hold_report(char *line)
{
	int lpid = 0, pid = 0, wstatus = 0;
	double runtime = 0;

	log_event('<', line);
	if (sscanf(line, "held %d %d", &lpid, &pid) == 2) {
		if (st.phase == PH_WAIT_HELD) {
			st.launcher_pid = lpid;
			became_held(pid);
		} else {
			note("extra held process %d (launcher %d) released at once", pid, lpid);
			kill(lpid, SIGUSR1);
		}
	} else if (sscanf(line, "exit %d %d %d %lf", &lpid, &pid, &wstatus, &runtime) == 4) {
		if (pid == st.target_pid)
			target_finished(mono_now(), wstatus, runtime);
	} else if (!strncmp(line, "hold-error ", 11)) {
		if (st.phase == PH_WAIT_HELD) {
			set_status("error", "held command failed: %s", line + 11);
			emit("error %s", st.error);
			begin_kill("error", "held command failed");
		}
	}
}

static void read_control(void)
{
	char buf[1024];
	ssize_t n = read(st.ctl_fd, buf, sizeof(buf));

	if (n > 0)
		feed_lines(st.ctl_in, &st.ctl_in_len, buf, (size_t)n, handle_command);
	else if (n == 0 || (errno != EAGAIN && errno != EINTR))
		/* virtio port without a host end: EOF/HUP until it connects; poll it less */
		st.ctl_mute_until = mono_now() + 0.5;
}

static void read_hold_fifo(void)
{
	char buf[1024];
	ssize_t n;

	while (st.hold_fd >= 0 && (n = read(st.hold_fd, buf, sizeof(buf))) > 0)
		feed_lines(st.hold_in, &st.hold_in_len, buf, (size_t)n, handle_hold_report);
}

static void reap_children(void)
{
	for (;;) {
		int wstatus;
		pid_t pid = waitpid(-1, &wstatus, WNOHANG | __WALL);

		if (pid <= 0)
			return;
		if (pid == st.top_pid && WIFSTOPPED(wstatus)) {
			/* the held target got a signal while stopped: deliver it at release */
			if (WSTOPSIG(wstatus) != SIGTRAP)
				st.pending_sig = WSTOPSIG(wstatus);
			if (st.phase != PH_HELD)
				ptrace(PTRACE_CONT, pid, NULL, (void *)(intptr_t)st.pending_sig);
			continue;
		}
		if (WIFSTOPPED(wstatus) || WIFCONTINUED(wstatus))
			continue;
		if (pid == st.top_pid) {
			double now = mono_now();

			st.top_exited = 1;
			st.top_wstatus = wstatus;
			/* a launcher's last report (hold-error) says more than the exit */
			if (opt.hold == HOLD_CHILD && st.phase == PH_WAIT_HELD)
				read_hold_fifo();
			if (opt.hold != HOLD_CHILD && st.phase >= PH_RUNNING)
				target_finished(now, wstatus, now - st.release_mono);
			else if (st.phase == PH_HELD || st.phase == PH_WAIT_HELD)
				set_status("error", opt.hold == HOLD_CHILD
					   ? "command exited before a held process was reported "
					     "(is `de-agent hold` its submit prefix?)"
					   : "command exited while held");
		}
	}
}

static void handle_signal(void)
{
	struct signalfd_siginfo si;

	while (read(st.sfd, &si, sizeof(si)) == sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGCHLD:
			reap_children();
			break;
		case SIGUSR1:
			log_event('<', "SIGUSR1");
			if (st.phase == PH_HELD)
				release();
			break;
		case SIGTERM:
		case SIGINT:
		case SIGHUP:
			note("agent got signal %d", (int)si.ssi_signo);
			if (st.phase < PH_DRAIN)
				begin_kill("aborted", "agent terminated by signal");
			break;
		default:
			break;
		}
	}
}

static void open_control(void)
{
	struct stat sb;

	st.ctl_fd = -1;
	if (!opt.control)
		return;
	if (stat(opt.control, &sb))
		fatal("control path %s: %s", opt.control, strerror(errno));
	st.ctl_is_dev = S_ISCHR(sb.st_mode);
	if (!st.ctl_is_dev && !S_ISFIFO(sb.st_mode))
		fatal("control path %s is neither a character device (virtio port) nor a FIFO",
		      opt.control);
	st.ctl_fd = open(opt.control, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (st.ctl_fd < 0)
		fatal("cannot open control path %s: %s", opt.control, strerror(errno));
}

static void spawn(void)
{
	int errpipe[2];
	struct child_failure f;
	ssize_t n;
	char fifo[PATH_CAP];

	if (opt.hold == HOLD_CHILD) {
		out_path(fifo, sizeof(fifo), "hold.fifo");
		unlink(fifo);
		if (mkfifo(fifo, 0600))
			fatal("mkfifo %s: %s", fifo, strerror(errno));
		st.hold_fd = open(fifo, O_RDWR | O_NONBLOCK | O_CLOEXEC);
		if (st.hold_fd < 0)
			fatal("open %s: %s", fifo, strerror(errno));
		setenv(HOLD_FIFO_ENV, fifo, 1);
	} else {
		unsetenv(HOLD_FIFO_ENV);
	}
	if (pipe2(errpipe, O_CLOEXEC))
		fatal("pipe: %s", strerror(errno));
	if (opt.hold == HOLD_NONE) {
		/* no hold: sample 0 and the clock start right before the fork */
		write_header();
		maybe_drop_caches();
		trace_open();
		st.release_mono = mono_now();
		take_sample(0.0);
		st.release_mono = mono_now();
	}
	st.top_pid = fork();
	if (st.top_pid < 0)
		fatal("fork: %s", strerror(errno));
	if (st.top_pid == 0) {
		int fd;

		close(errpipe[0]);
		setpgid(0, 0);
		restore_child_signals();
		fd = open("/dev/null", O_RDONLY);
		if (fd >= 0) {
			dup2(fd, 0);
			close(fd);
		}
		if (strcmp(opt.workload_log, "-")) {
			fd = open(opt.workload_log, O_WRONLY | O_CREAT | O_APPEND, 0644);
			if (fd < 0)
				child_fail(errpipe[1], STAGE_LOG);
			dup2(fd, 1);
			dup2(fd, 2);
			close(fd);
		}
		if (opt.cwd && chdir(opt.cwd))
			child_fail(errpipe[1], STAGE_CHDIR);
		if (opt.hold == HOLD_EXEC && ptrace(PTRACE_TRACEME, 0, NULL, NULL))
			child_fail(errpipe[1], STAGE_TRACEME);
		execvp(opt.cmd[0], opt.cmd);
		child_fail(errpipe[1], STAGE_EXEC);
	}
	setpgid(st.top_pid, st.top_pid); /* also here: no race with kill(-pgid) */
	close(errpipe[1]);
	do
		n = read(errpipe[0], &f, sizeof(f));
	while (n < 0 && errno == EINTR);
	close(errpipe[0]);
	if (n == (ssize_t)sizeof(f)) {
		int wstatus;

		waitpid(st.top_pid, &wstatus, 0);
		st.top_exited = 1;
		set_status("error", "%s %s: %s", stage_name(f.stage), opt.cmd[0], strerror(f.err));
		emit("error %s", st.error);
		return;
	}
	if (opt.hold == HOLD_EXEC) {
		int wstatus;

		if (waitpid(st.top_pid, &wstatus, __WALL) != st.top_pid || !WIFSTOPPED(wstatus)) {
			st.top_exited = 1;
			set_status("error", "%s did not stop at exec", opt.cmd[0]);
			emit("error %s", st.error);
			return;
		}
		/* if the agent dies, the held workload dies with it */
		ptrace(PTRACE_SETOPTIONS, st.top_pid, NULL, (void *)(intptr_t)PTRACE_O_EXITKILL);
		became_held(st.top_pid);
	} else if (opt.hold == HOLD_CHILD) {
		st.phase = PH_WAIT_HELD;
		st.deadline = opt.wait_timeout_s > 0 ? mono_now() + opt.wait_timeout_s : 0;
		note("command %d started; waiting for a held process on %s", st.top_pid, fifo);
	} else {
		st.target_pid = st.top_pid;
		out_path(g_path, sizeof(g_path), "target.pid");
		snprintf(fifo, sizeof(fifo), "%d\n", st.top_pid);
		write_atomic(g_path, fifo);
		st.phase = PH_RUNNING;
		st.next_sample = st.release_mono + opt.interval_ms / 1000.0;
		st.deadline = opt.timeout_s > 0 ? st.release_mono + opt.timeout_s : 0;
		emit("started %d", st.top_pid);
	}
}

static void finish(void)
{
	char text[2048];
	int len;

	if (!st.status[0])
		set_status("error", "workload ended without a status");
	/* nothing of the workload outlives the run */
	kill_workload(SIGKILL);
	trace_drain();
	trace_sync();
	if (st.samples_fd >= 0)
		drop_written(st.samples_fd, lseek(st.samples_fd, 0, SEEK_CUR));
	if (st.release_mono > 0) {
		if (!st.target_exited) {
			/* timeout / abort: the runtime is up to when we gave up */
			st.end_mono = st.end_mono > 0 ? st.end_mono : mono_now();
			st.runtime_s = st.end_mono - st.release_mono;
		}
		snprintf(text, sizeof(text), "%.6f\n", st.runtime_s);
		out_path(g_path, sizeof(g_path), "runtime");
		write_atomic(g_path, text);
	}
	len = snprintf(text, sizeof(text),
		       "status=%s\nruntime_s=%.6f\ntarget_pid=%d\ncommand_pid=%d\n"
		       "release_mono_s=%.6f\nend_mono_s=%.6f\nnr_samples=%ld\n"
		       "record_bytes=%llu\nagent_version=" AGENT_VERSION "\n",
		       st.status, st.runtime_s, st.target_pid, st.top_pid, st.release_mono,
		       st.end_mono, st.nr_samples, st.record_bytes);
	if (st.target_exited && WIFEXITED(st.target_wstatus))
		len += snprintf(text + len, sizeof(text) - (size_t)len, "exit_code=%d\n",
				WEXITSTATUS(st.target_wstatus));
	if (st.target_exited && WIFSIGNALED(st.target_wstatus))
		len += snprintf(text + len, sizeof(text) - (size_t)len, "signal=%d\n",
				WTERMSIG(st.target_wstatus));
	if (opt.hold == HOLD_CHILD && st.top_exited && WIFEXITED(st.top_wstatus))
		len += snprintf(text + len, sizeof(text) - (size_t)len, "command_exit_code=%d\n",
				WEXITSTATUS(st.top_wstatus));
	if (st.error[0]) {
		for (char *p = st.error; *p; p++)
			if (*p == '\n')
				*p = ' ';
		snprintf(text + len, sizeof(text) - (size_t)len, "error=%s\n", st.error);
	}
	out_path(g_path, sizeof(g_path), "status");
	if (write_atomic(g_path, text))
		fprintf(stderr, "de-agent: cannot write %s: %s\n", g_path, strerror(errno));
	emit("done %s %.6f", st.status, st.runtime_s);
	/* give the host up to 2 s to take the last messages */
	for (double until = mono_now() + 2.0; st.ctl_out_len && mono_now() < until;) {
		struct pollfd p = { st.ctl_fd, POLLOUT, 0 };

		poll(&p, 1, 100);
		ctl_flush();
	}
}

static void run_loop(void)
{
	while (st.phase != PH_DONE) {
		struct pollfd fds[4];
		int nfds = 0, timeout_ms = 1000, ctl_idx = -1, hold_idx = -1, trace_idx = -1;
		double now = mono_now(), wake = now + 1.0;

		/* end conditions */
		if (st.top_exited && (opt.hold != HOLD_CHILD || st.target_exited ||
				      st.phase < PH_RUNNING))
			break;
		if (st.kill_grace_until > 0 && now >= st.kill_grace_until) {
			kill_workload(SIGKILL);
			if (st.launcher_pid > 0)
				kill(st.launcher_pid, SIGKILL);
			if (now >= st.kill_grace_until + 5) {
				note("workload did not die after SIGKILL; giving up on it");
				break;
			}
		}
		if (st.deadline > 0 && now >= st.deadline) {
			st.deadline = 0;
			if (st.target_exited) {
				note("command did not exit within 30 s after the target; killing it");
				kill_workload(SIGKILL);
				st.kill_grace_until = now;
			} else if (st.phase == PH_RUNNING) {
				char why[64];

				snprintf(why, sizeof(why), "timeout after %.0f s", opt.timeout_s);
				begin_kill("timeout", why);
			} else {
				begin_kill("error", st.phase == PH_HELD
					   ? "no go from the host within the wait timeout"
					   : "no held process reported within the wait timeout");
				emit("error %s", st.error);
			}
		}
		if (st.phase == PH_RUNNING && !st.target_exited && now >= st.next_sample) {
			take_sample(now - st.release_mono);
			do
				st.next_sample += opt.interval_ms / 1000.0;
			while (st.next_sample <= now);
			if (st.record_pending)
				trace_sync();
		}
		if (opt.hold == HOLD_CHILD && st.phase == PH_RUNNING && !st.target_exited &&
		    kill(st.target_pid, 0) && errno == ESRCH) {
			/* the launcher reports right after reaping; allow it a second */
			if (st.vanished_at == 0) {
				st.vanished_at = now;
			} else if (now - st.vanished_at > 1.0) {
				set_status("error", "held process %d vanished without an exit report",
					   st.target_pid);
				target_finished(now, 0, now - st.release_mono);
			}
		}

		if (st.phase == PH_RUNNING && st.next_sample < wake)
			wake = st.next_sample;
		if (st.deadline > 0 && st.deadline < wake)
			wake = st.deadline;
		if (st.kill_grace_until > 0 && st.kill_grace_until < wake)
			wake = st.kill_grace_until;
		timeout_ms = (int)((wake - now) * 1000) + 1;
		if (timeout_ms < 0)
			timeout_ms = 0;

		fds[nfds++] = (struct pollfd){ st.sfd, POLLIN, 0 };
		if (st.ctl_fd >= 0 && now >= st.ctl_mute_until) {
			ctl_idx = nfds;
			fds[nfds++] = (struct pollfd){ st.ctl_fd,
				(short)(POLLIN | (st.ctl_out_len ? POLLOUT : 0)), 0 };
		} else if (st.ctl_fd >= 0 && st.ctl_mute_until - now < timeout_ms / 1000.0) {
			timeout_ms = (int)((st.ctl_mute_until - now) * 1000) + 1;
		}
		if (st.hold_fd >= 0) {
			hold_idx = nfds;
			fds[nfds++] = (struct pollfd){ st.hold_fd, POLLIN, 0 };
		}
		if (st.trace_fd >= 0) {
			trace_idx = nfds;
			fds[nfds++] = (struct pollfd){ st.trace_fd, POLLIN, 0 };
		}
		if (poll(fds, (nfds_t)nfds, timeout_ms) < 0) {
			if (errno == EINTR)
				continue;
			fatal("poll: %s", strerror(errno));
		}
		if (fds[0].revents & POLLIN)
			handle_signal();
		if (ctl_idx >= 0 && fds[ctl_idx].revents) {
			if (fds[ctl_idx].revents & POLLOUT)
				ctl_flush();
			if (fds[ctl_idx].revents & (POLLIN | POLLHUP | POLLERR))
				read_control();
		}
		if (hold_idx >= 0 && (fds[hold_idx].revents & POLLIN))
			read_hold_fifo();
		if (trace_idx >= 0 && (fds[trace_idx].revents & POLLIN))
			trace_drain();
	}
}

static void detach_self(void)
{
	pid_t pid = fork();
	int fd;

	if (pid < 0)
		fatal("fork: %s", strerror(errno));
	if (pid > 0) {
		printf("%d\n", (int)pid);
		fflush(stdout);
		_exit(0);
	}
	setsid();
	out_path(g_path, sizeof(g_path), "agent.log");
	fd = open(g_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd >= 0) {
		dup2(fd, 1);
		dup2(fd, 2);
		close(fd);
	}
	fd = open("/dev/null", O_RDONLY);
	if (fd >= 0) {
		dup2(fd, 0);
		close(fd);
	}
}

static void usage_run(FILE *f)
{
	fputs("usage: de-agent run --out DIR [options] -- CMD [ARGS...]\n"
	      "  --interval-ms N      sample period (default 1000)\n"
	      "  --control PATH       virtio-serial port (bidirectional) or FIFO (host->agent)\n"
	      "  --hold exec|child|none\n"
	      "                       exec: hold CMD stopped at exec (default); child: CMD runs,\n"
	      "                       a `de-agent hold` launcher inside it holds the benchmark;\n"
	      "                       none: start at once\n"
	      "  --hold-exec          same as --hold exec\n"
	      "  --timeout-s N        kill the workload N s after release (default: none)\n"
	      "  --wait-timeout-s N   give up if not released within N s (default 600)\n"
	      "  --kdamond-dir DIR    kdamond sysfs dir for CPU time and DAMOS stats\n"
	      "  --trace-pipe PATH    tracefs trace_pipe to stream ...\n"
	      "  --record FILE        ... into FILE (default DIR/trace.txt)\n"
	      "  --drop-caches        sync and drop caches right before sample 0\n"
	      "  --workload-log FILE  stdout+stderr of CMD (default DIR/workload.log; - inherits)\n"
	      "  --cwd DIR            working directory of CMD\n"
	      "  --detach             go to the background, print the agent pid, log to DIR/agent.log\n",
	      f);
}

static double parse_seconds(const char *s, const char *what)
{
	char *end;
	double v = strtod(s, &end);

	if (*end || v < 0)
		fatal("bad %s '%s': expected seconds >= 0", what, s);
	return v;
}

static void copy_opt(char *dst, const char *src, const char *what)
{
	if (snprintf(dst, PATH_CAP, "%s", src) >= PATH_CAP)
		fatal("%s too long", what);
}

/* mkdir -p */
static int make_dirs(const char *path)
{
	char buf[PATH_CAP];

	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
		return -1;
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) && errno != EEXIST)
			return -1;
		*p = '/';
	}
	return mkdir(buf, 0755) && errno != EEXIST ? -1 : 0;
}

static int cmd_run(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "out", required_argument, NULL, 'o' },
		{ "interval-ms", required_argument, NULL, 'i' },
		{ "control", required_argument, NULL, 'c' },
		{ "hold", required_argument, NULL, 'H' },
		{ "hold-exec", no_argument, NULL, 'E' },
		{ "timeout-s", required_argument, NULL, 't' },
		{ "wait-timeout-s", required_argument, NULL, 'w' },
		{ "kdamond-dir", required_argument, NULL, 'k' },
		{ "trace-pipe", required_argument, NULL, 'p' },
		{ "record", required_argument, NULL, 'r' },
		{ "drop-caches", no_argument, NULL, 'D' },
		{ "workload-log", required_argument, NULL, 'l' },
		{ "cwd", required_argument, NULL, 'C' },
		{ "detach", no_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static char log_default[PATH_CAP];
	sigset_t mask;
	int c;

	while ((c = getopt_long(argc, argv, "+", longopts, NULL)) != -1) {
		char *end;

		switch (c) {
		case 'o': opt.out_dir = optarg; break;
		case 'i':
			opt.interval_ms = strtol(optarg, &end, 10);
			if (*end || opt.interval_ms <= 0)
				fatal("bad --interval-ms '%s': expected a positive integer", optarg);
			break;
		case 'c': opt.control = optarg; break;
		case 'H':
			if (!strcmp(optarg, "exec"))
				opt.hold = HOLD_EXEC;
			else if (!strcmp(optarg, "child"))
				opt.hold = HOLD_CHILD;
			else if (!strcmp(optarg, "none"))
				opt.hold = HOLD_NONE;
			else
				fatal("bad --hold '%s': valid are exec, child, none", optarg);
			break;
		case 'E': opt.hold = HOLD_EXEC; break;
		case 't': opt.timeout_s = parse_seconds(optarg, "--timeout-s"); break;
		case 'w': opt.wait_timeout_s = parse_seconds(optarg, "--wait-timeout-s"); break;
		case 'k': copy_opt(opt.kdamond_dir, optarg, "--kdamond-dir"); break;
		case 'p': copy_opt(opt.trace_pipe, optarg, "--trace-pipe"); break;
		case 'r': copy_opt(opt.record, optarg, "--record"); break;
		case 'D': opt.drop_caches = 1; break;
		case 'l': opt.workload_log = optarg; break;
		case 'C': opt.cwd = optarg; break;
		case 'd': opt.detach = 1; break;
		case 'h': usage_run(stdout); return 0;
		default: usage_run(stderr); return EXIT_HARNESS;
		}
	}
	if (!opt.out_dir)
		fatal("run: --out DIR is required");
	if (optind >= argc)
		fatal("run: no command given (put it after --)");
	opt.cmd = argv + optind;
	if (make_dirs(opt.out_dir))
		fatal("cannot create %s: %s", opt.out_dir, strerror(errno));
	if (!opt.workload_log) {
		out_path(log_default, sizeof(log_default), "workload.log");
		opt.workload_log = log_default;
	}
	if (opt.detach)
		detach_self();

	st.self_pid = getpid();
	st.start_mono = mono_now();
	st.hold_fd = st.trace_fd = st.record_fd = -1;
	out_path(g_path, sizeof(g_path), "events.log");
	st.events_fd = open(g_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (st.events_fd < 0)
		fatal("cannot create %s: %s", g_path, strerror(errno));
	out_path(g_path, sizeof(g_path), "samples.csv");
	st.samples_fd = open(g_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (st.samples_fd < 0)
		fatal("cannot create %s: %s", g_path, strerror(errno));
	out_path(g_path, sizeof(g_path), "status");
	unlink(g_path);
	out_path(g_path, sizeof(g_path), "runtime");
	unlink(g_path);
	open_control();
	signal(SIGPIPE, SIG_IGN);

	/* orphans of the workload become our children, so we can see and kill them */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGUSR1);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	st.sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (st.sfd < 0)
		fatal("signalfd: %s", strerror(errno));
	note("de-agent " AGENT_VERSION " pid %d, command %s", st.self_pid, opt.cmd[0]);

	spawn();
	run_loop();
	finish();
	if (!strcmp(st.status, "ok"))
		return EXIT_OK;
	return !strcmp(st.status, "error") ? EXIT_HARNESS : EXIT_WORKLOAD_FAILED;
}

/* ------------------------------------------------------------------ */
/* `hold`: the launcher inside a wrapper such as parsecmgmt            */
/* ------------------------------------------------------------------ */

static int hold_report(const char *fifo, const char *fmt, ...)
{
	char line[512];
	int fd, n, ret;
	va_list ap;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	if (n < 0 || n >= (int)sizeof(line) - 1)
		return -1;
	line[n++] = '\n';
	fd = open(fifo, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ret = write_all(fd, line, (size_t)n); /* < PIPE_BUF: one atomic write */
	close(fd);
	return ret;
}

/*
 * `hold --target-comm NAME`: the benchmark is a descendant of CMD, e.g. the
 * binary SPLASH-2X's run.sh starts with `eval $RUN`.  CMD's whole tree is
 * traced (fork, vfork, clone and exec events) and runs on until a task execs
 * with comm NAME: that one is held at its exec and every other tracee is let
 * go.  Only the benchmark stays traced, so its exit is seen by waitpid().
 */
#define COMM_CAP 32
#define MAX_RAN 16
#define MAX_SIGNALED 1024

static struct {
	int self;
	int top;            /* CMD, our child */
	int target;         /* the held benchmark, 0 until found */
	char want[16];      /* NAME as the kernel keeps it: TASK_COMM_LEN - 1 characters */
	int top_exited, top_wstatus;
	int target_exited, target_wstatus;
	double target_end;
	char ran[MAX_RAN][16];
	int nr_ran, ran_more;
	int signaled[MAX_SIGNALED]; /* tids we sent SIGSTOP to, to detach them */
	int nr_signaled;
} ht;

static void task_comm(int pid, char *buf, size_t cap)
{
	char path[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/comm", pid);
	n = read_small(path, buf, cap);
	if (n <= 0)
		buf[0] = '\0';
	else if (buf[n - 1] == '\n')
		buf[n - 1] = '\0';
}

/* The distinct commands CMD's tree exec'd, for the error when NAME never ran. */
static void ran_add(const char *comm)
{
	for (int i = 0; i < ht.nr_ran; i++)
		if (!strcmp(ht.ran[i], comm))
			return;
	if (ht.nr_ran == MAX_RAN) {
		ht.ran_more = 1;
		return;
	}
	snprintf(ht.ran[ht.nr_ran++], sizeof(ht.ran[0]), "%s", comm);
}

static void ran_list(char *buf, size_t cap)
{
	size_t len = 0;

	buf[0] = '\0';
	for (int i = 0; i < ht.nr_ran && len < cap; i++)
		len += (size_t)snprintf(buf + len, cap - len, "%s%s", i ? ", " : "", ht.ran[i]);
	if (ht.ran_more && len < cap)
		snprintf(buf + len, cap - len, ", ...");
}

static int was_signaled(int tid)
{
	for (int i = 0; i < ht.nr_signaled; i++)
		if (ht.signaled[i] == tid)
			return 1;
	return 0;
}

/* A hexadecimal signal mask field ("SigPnd:") of /proc/<tid>/status. */
static unsigned long long status_mask(const char *text, const char *key)
{
	const char *p = strstr(text, key);

	return p ? strtoull(p + strlen(key), NULL, 16) : 0;
}

/* Is a SIGSTOP still queued for the thread (ours, not yet delivered)? */
static int sigstop_pending(int tid)
{
	char path[64];
	unsigned long long bit = 1ULL << (SIGSTOP - 1);

	snprintf(path, sizeof(path), "/proc/%d/status", tid);
	if (read_small(path, g_big, sizeof(g_big)) <= 0)
		return 0;
	return ((status_mask(g_big, "\nSigPnd:") | status_mask(g_big, "\nShdPnd:")) & bit) != 0;
}

/* With PTRACE_TRACEME tracing, a group-stop is the stop without siginfo. */
static int is_group_stop(int pid)
{
	siginfo_t si;

	return ptrace(PTRACE_GETSIGINFO, pid, NULL, &si) < 0 && errno == EINVAL;
}

static void trace_resume(int request, int pid, int sig)
{
	ptrace(request, pid, NULL, (void *)(intptr_t)sig);
}

static void trace_event(int pid, int wstatus)
{
	int sig, event;

	if (WIFEXITED(wstatus) || WIFSIGNALED(wstatus)) {
		if (pid == ht.top) {
			ht.top_exited = 1;
			ht.top_wstatus = wstatus;
		}
		if (pid == ht.target && !ht.target_exited) {
			ht.target_end = mono_now();
			ht.target_exited = 1;
			ht.target_wstatus = wstatus;
		}
		return;
	}
	if (!WIFSTOPPED(wstatus))
		return;
	sig = WSTOPSIG(wstatus);
	event = (unsigned int)wstatus >> 16;
	if (pid == ht.target) {
		/* the running benchmark: its signals go on, its own execs just continue */
		trace_resume(PTRACE_CONT, pid, event || is_group_stop(pid) ? 0 : sig);
		return;
	}
	if (event == PTRACE_EVENT_EXEC && !ht.target) {
		char comm[COMM_CAP];

		task_comm(pid, comm, sizeof(comm));
		ran_add(comm);
		if (!strcmp(comm, ht.want)) {
			ht.target = pid;
			/* from here on neither its children nor its threads are traced */
			ptrace(PTRACE_SETOPTIONS, pid, NULL,
			       (void *)(intptr_t)(PTRACE_O_EXITKILL | PTRACE_O_TRACEEXEC));
			return; /* held, stopped at its exec */
		}
	}
	if (event) {
		/* fork/vfork/clone: the new task is traced and starts with a SIGSTOP */
		trace_resume(PTRACE_CONT, pid, 0);
		return;
	}
	if (!ht.target) {
		/* SIGSTOP (what new tracees start with) is not passed on; the rest is */
		trace_resume(PTRACE_CONT, pid, sig == SIGSTOP || is_group_stop(pid) ? 0 : sig);
		return;
	}
	/* the benchmark is held: let go of every other task at its next stop */
	if (is_group_stop(pid))
		trace_resume(PTRACE_DETACH, pid, 0); /* it stays in its group-stop */
	else if (was_signaled(pid) && sigstop_pending(pid))
		trace_resume(PTRACE_CONT, pid, sig == SIGSTOP ? 0 : sig); /* ours comes next */
	else
		trace_resume(PTRACE_DETACH, pid, sig == SIGSTOP ? 0 : sig);
}

/* Handle every pending wait status; -1 once no tracee or child is left. */
static int trace_reap(void)
{
	for (;;) {
		int wstatus;
		pid_t pid = waitpid(-1, &wstatus, WNOHANG | __WALL);

		if (pid > 0) {
			trace_event(pid, wstatus);
			continue;
		}
		return pid < 0 && errno == ECHILD ? -1 : 0;
	}
}

/* SIGSTOP each task we trace but the target, once; returns how many there are. */
static int stop_other_tracees(void)
{
	DIR *proc = opendir("/proc");
	struct dirent *d;
	int remaining = 0;

	if (!proc)
		return 0;
	while ((d = readdir(proc)) != NULL) {
		char path[PATH_CAP];
		struct dirent *t;
		DIR *tasks;

		if (d->d_name[0] < '1' || d->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/task", d->d_name);
		tasks = opendir(path);
		if (!tasks)
			continue;
		while ((t = readdir(tasks)) != NULL) {
			unsigned long long tracer = 0;
			int tid = atoi(t->d_name);

			if (tid <= 0 || tid == ht.target)
				continue;
			snprintf(path, sizeof(path), "/proc/%s/task/%d/status", d->d_name, tid);
			if (read_small(path, g_big, sizeof(g_big)) <= 0 ||
			    find_field(g_big, "TracerPid:", &tracer) || (int)tracer != ht.self)
				continue;
			remaining++;
			if (was_signaled(tid) || ht.nr_signaled == MAX_SIGNALED)
				continue;
			ht.signaled[ht.nr_signaled++] = tid;
			syscall(SYS_tgkill, atoi(d->d_name), tid, SIGSTOP);
		}
		closedir(tasks);
	}
	closedir(proc);
	return remaining;
}

static void wait_sigchld(double seconds)
{
	struct timespec limit = { (time_t)seconds, (long)((seconds - (time_t)seconds) * 1e9) };
	sigset_t chld;

	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigtimedwait(&chld, NULL, &limit);
}

/* Detach everything but the target (a task that does not stop is let go later). */
static void detach_others(void)
{
	double until = mono_now() + 10;

	for (;;) {
		trace_reap();
		if (!stop_other_tracees())
			return;
		if (mono_now() > until) {
			fprintf(stderr, "de-agent hold: tasks of the command did not stop within 10 s; "
				"they are let go at their next stop\n");
			return;
		}
		wait_sigchld(0.1);
	}
}

static int wait_code(int wstatus)
{
	return WIFSIGNALED(wstatus) ? 128 + WTERMSIG(wstatus) : WEXITSTATUS(wstatus);
}

/* Past the initial exec stop of CMD (pid ht.top): find, hold, release and time the target. */
static int hold_traced(const char *fifo, char **argv, sigset_t *mask, double wait_timeout)
{
	char comm[COMM_CAP];
	int reported = 0;
	double t0;

	task_comm(ht.top, comm, sizeof(comm));
	ran_add(comm);
	if (!strcmp(comm, ht.want)) {
		ht.target = ht.top; /* CMD is the benchmark itself */
		ptrace(PTRACE_SETOPTIONS, ht.top, NULL,
		       (void *)(intptr_t)(PTRACE_O_EXITKILL | PTRACE_O_TRACEEXEC));
	} else {
		ptrace(PTRACE_SETOPTIONS, ht.top, NULL,
		       (void *)(intptr_t)(PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK |
					  PTRACE_O_TRACECLONE | PTRACE_O_TRACEEXEC |
					  PTRACE_O_EXITKILL));
		trace_resume(PTRACE_CONT, ht.top, 0);
	}
	while (!ht.target) {
		siginfo_t si;
		int sig;

		if (trace_reap() < 0 || ht.target)
			break;
		sig = sigwaitinfo(mask, &si);
		if (sig == SIGTERM || sig == SIGINT || sig == SIGHUP) {
			/* PTRACE_O_EXITKILL: the whole traced tree dies with us */
			fprintf(stderr, "de-agent hold: %s while waiting for %s; killed %s\n",
				strsignal(sig), ht.want, argv[0]);
			return EXIT_HARNESS;
		}
	}
	if (!ht.target) {
		char ran[MAX_RAN * 18 + 8];

		ran_list(ran, sizeof(ran));
		hold_report(fifo, "hold-error %d no process named %s ran under %s (it exec'd: %s)",
			    ht.self, ht.want, argv[0], ran);
		fprintf(stderr, "de-agent hold: no process named %s ran under %s (it exec'd: %s)\n",
			ht.want, argv[0], ran);
		return 127;
	}
	detach_others();
	if (hold_report(fifo, "held %d %d", ht.self, ht.target)) {
		fprintf(stderr, "de-agent hold: cannot report to %s (%s); running unheld\n", fifo,
			strerror(errno));
	} else {
		double until = mono_now() + wait_timeout;
		int sig;

		for (;;) {
			double left = until - mono_now();
			struct timespec limit = { (time_t)(left > 0 ? left : 0),
				(long)((left > 0 ? left - (time_t)left : 0) * 1e9) };
			siginfo_t si;

			sig = sigtimedwait(mask, &si, &limit);
			if (sig != SIGCHLD)
				break;
			trace_reap(); /* tasks let go late; CMD may end while its child is held */
		}
		if (sig != SIGUSR1) {
			kill(ht.target, SIGKILL);
			fprintf(stderr, "de-agent hold: %s before release; killed %s\n",
				sig < 0 ? "timeout" : strsignal(sig), ht.want);
			return EXIT_HARNESS;
		}
	}
	t0 = mono_now();
	trace_resume(PTRACE_CONT, ht.target, 0);
	for (;;) {
		siginfo_t si;
		int left = trace_reap(), sig;

		if (ht.target_exited && !reported) {
			hold_report(fifo, "exit %d %d %d %.6f", ht.self, ht.target,
				    ht.target_wstatus, ht.target_end - t0);
			reported = 1;
		}
		if (left < 0 || (ht.target_exited && ht.top_exited))
			break;
		sig = sigwaitinfo(mask, &si);
		if (sig == SIGTERM || sig == SIGINT || sig == SIGHUP)
			kill(ht.target_exited ? ht.top : ht.target, sig);
	}
	return ht.top_exited ? wait_code(ht.top_wstatus) : EXIT_HARNESS;
}

static int cmd_hold(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "fifo", required_argument, NULL, 'f' },
		{ "wait-timeout-s", required_argument, NULL, 'w' },
		{ "target-comm", required_argument, NULL, 'T' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *fifo = getenv(HOLD_FIFO_ENV);
	const char *target_comm = NULL;
	double wait_timeout = 3600;
	int errpipe[2], wstatus, self = getpid(), c;
	struct child_failure f;
	sigset_t mask;
	pid_t child;
	ssize_t n;
	double t0, t1;

	while ((c = getopt_long(argc, argv, "+", longopts, NULL)) != -1) {
		switch (c) {
		case 'f': fifo = optarg; break;
		case 'w': wait_timeout = parse_seconds(optarg, "--wait-timeout-s"); break;
		case 'T':
			if (!optarg[0] || strchr(optarg, '/'))
				fatal("bad --target-comm '%s': expected a process name (no '/')",
				      optarg);
			target_comm = optarg;
			break;
		case 'h':
			puts("usage: de-agent hold [--fifo PATH] [--wait-timeout-s N] [--target-comm NAME]"
			     " -- CMD [ARGS...]\n"
			     "Runs CMD held at exec, reports it to the `de-agent run` that owns PATH\n"
			     "(default $" HOLD_FIFO_ENV "), waits for SIGUSR1, then times CMD.\n"
			     "  --target-comm NAME  hold and time, instead of CMD, the first process of\n"
			     "                      CMD's tree that execs with comm NAME (first 15\n"
			     "                      characters, as the kernel keeps them), e.g. the\n"
			     "                      binary a run.sh starts; CMD's exit status is still\n"
			     "                      returned; a hold-error if NAME never runs");
			return 0;
		default: return EXIT_HARNESS;
		}
	}
	if (optind >= argc)
		fatal("hold: no command given");
	argv += optind;
	if (!fifo || !fifo[0]) {
		fprintf(stderr, "de-agent hold: no $" HOLD_FIFO_ENV "; running %s unheld\n", argv[0]);
		execvp(argv[0], argv);
		fatal("exec %s: %s", argv[0], strerror(errno));
	}
	sigemptyset(&mask);
	sigaddset(&mask, SIGUSR1);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGCHLD);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	if (pipe2(errpipe, O_CLOEXEC))
		fatal("pipe: %s", strerror(errno));
	child = fork();
	if (child < 0)
		fatal("fork: %s", strerror(errno));
	if (child == 0) {
		close(errpipe[0]);
		restore_child_signals();
		if (ptrace(PTRACE_TRACEME, 0, NULL, NULL))
			child_fail(errpipe[1], STAGE_TRACEME);
		execvp(argv[0], argv);
		child_fail(errpipe[1], STAGE_EXEC);
	}
	close(errpipe[1]);
	do
		n = read(errpipe[0], &f, sizeof(f));
	while (n < 0 && errno == EINTR);
	close(errpipe[0]);
	if (n == (ssize_t)sizeof(f)) {
		waitpid(child, &wstatus, 0);
		hold_report(fifo, "hold-error %d %s %s: %s", self, stage_name(f.stage), argv[0],
			    strerror(f.err));
		fprintf(stderr, "de-agent hold: %s %s: %s\n", stage_name(f.stage), argv[0],
			strerror(f.err));
		return 127;
	}
	if (waitpid(child, &wstatus, __WALL) != child || !WIFSTOPPED(wstatus))
		fatal("hold: %s did not stop at exec", argv[0]);
	if (target_comm) {
		ht.self = self;
		ht.top = child;
		snprintf(ht.want, sizeof(ht.want), "%s", target_comm);
		return hold_traced(fifo, argv, &mask, wait_timeout);
	}
	ptrace(PTRACE_SETOPTIONS, child, NULL, (void *)(intptr_t)PTRACE_O_EXITKILL);
	if (hold_report(fifo, "held %d %d", self, (int)child)) {
		fprintf(stderr, "de-agent hold: cannot report to %s (%s); running unheld\n", fifo,
			strerror(errno));
	} else {
		struct timespec limit = { (time_t)wait_timeout, 0 };
		int sig;

		for (;;) {
			siginfo_t si;

			sig = sigtimedwait(&mask, &si, &limit);
			if (sig == SIGCHLD)
				continue; /* our own tracee's stop notifications */
			break;
		}
		if (sig != SIGUSR1) {
			kill(child, SIGKILL);
			fprintf(stderr, "de-agent hold: %s before release; killed %s\n",
				sig < 0 ? "timeout" : strsignal(sig), argv[0]);
			return EXIT_HARNESS;
		}
	}
	t0 = mono_now();
	ptrace(PTRACE_DETACH, child, NULL, NULL);
	for (;;) {
		siginfo_t si;
		int sig = sigwaitinfo(&mask, &si);
		pid_t w;

		if (sig == SIGTERM || sig == SIGINT || sig == SIGHUP) {
			kill(child, sig);
			continue;
		}
		w = waitpid(child, &wstatus, WNOHANG);
		if (w == child && (WIFEXITED(wstatus) || WIFSIGNALED(wstatus)))
			break;
	}
	t1 = mono_now();
	hold_report(fifo, "exit %d %d %d %.6f", self, (int)child, wstatus, t1 - t0);
	if (WIFSIGNALED(wstatus))
		return 128 + WTERMSIG(wstatus);
	return WEXITSTATUS(wstatus);
}

int main(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "run"))
		return cmd_run(argc - 1, argv + 1);
	if (argc >= 2 && !strcmp(argv[1], "hold"))
		return cmd_hold(argc - 1, argv + 1);
	if (argc >= 2 && !strcmp(argv[1], "--version")) {
		puts("de-agent " AGENT_VERSION);
		return 0;
	}
	fputs("usage: de-agent run --out DIR [options] -- CMD [ARGS...]\n"
	      "       de-agent hold [--fifo PATH] [--target-comm NAME] -- CMD [ARGS...]\n"
	      "       de-agent --version\n"
	      "`de-agent run --help` lists the options.\n",
	      argc >= 2 && !strcmp(argv[1], "--help") ? stdout : stderr);
	return argc >= 2 && !strcmp(argv[1], "--help") ? 0 : EXIT_HARNESS;
}
