// SPDX-License-Identifier: GPL-2.0
/*
 * accgen: a synthetic memory access generator with ground truth.
 *
 * Reads masim-style configs: paragraphs separated by blank lines, '#' lines
 * are comments.  The first paragraph lists regions ("name, size[, init file]"),
 * each later one is a phase: a name line, a duration line in ms, then pattern
 * lines "region, random(1)/sequential(0), stride, weight[, ro|wo|rw]".
 * Extensions: a duration of "once" makes one sequential pass over each listed
 * region (in order; weights ignored); a phase without pattern lines idles.
 *
 * Regions are private anonymous mappings aligned to 2 MiB, so THP policy
 * (always / madvise / MADV_HUGEPAGE) applies to them as to a real heap.
 *
 * With --truth FILE it writes, atomically and after every phase, what it did:
 * region addresses and per-phase CLOCK_MONOTONIC times and accessed regions
 * (docs/agent.md, "Ground truth").
 *
 * Builds with: gcc -std=c11 -O2 -Wall -Wextra -Werror
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define MAX_NAME 256
#define ALIGN_2M (2UL << 20)

enum rw_mode { RW_RO, RW_WO, RW_RW };
static const char *const rw_names[] = { "ro", "wo", "rw" };

struct region {
	char name[MAX_NAME];
	size_t size;
	char *data_file;
	char *addr;
};

struct pattern {
	int region;
	int random;
	size_t stride;
	unsigned weight;
	enum rw_mode rw;
	size_t offset; /* sequential cursor, kept across batches */
};

struct phase {
	char name[MAX_NAME];
	double duration_ms; /* < 0: one pass ("once") */
	struct pattern *patterns;
	int nr_patterns;
	unsigned total_weight;
	/* results */
	double start_s, end_s;
	unsigned long long nr_accesses;
};

static struct region *regions;
static int nr_regions;
static struct phase *phases;
static int nr_phases;

static struct {
	const char *config;
	const char *truth;
	double scale;
	int repeat;
	enum rw_mode default_rw;
	int hugepage; /* 1 MADV_HUGEPAGE, -1 MADV_NOHUGEPAGE, 0 nothing */
	int quiet;
	int dry_run;
	unsigned long long seed;
	unsigned long batch;
} opt = {
	.scale = 1.0,
	.repeat = 1,
	.default_rw = RW_WO,
	.seed = 42,
	.batch = 32768,
};

static void die(const char *fmt, ...)
{
	va_list ap;

	fputs("accgen: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

static double mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size);

	if (!p)
		die("out of memory");
	return p;
}

/* ------------------------------------------------------------------ */
/* config                                                             */
/* ------------------------------------------------------------------ */

static char *trim(char *s)
{
	char *end;

	while (*s == ' ' || *s == '\t')
		s++;
	end = s + strlen(s);
	while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
		*--end = '\0';
	return s;
}

/* Split on ',' into at most `max` trimmed fields; returns the count. */
static int split_fields(char *line, char **fields, int max)
{
	int n = 0;
	char *save = NULL;

	for (char *tok = strtok_r(line, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (n == max)
			return max + 1;
		fields[n++] = trim(tok);
	}
	return n;
}

static unsigned long long parse_ull(const char *s, const char *what, int line_no)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *trim(end))
		die("%s:%d: bad %s '%s': expected a non-negative integer", opt.config, line_no, what,
		    s);
	return v;
}

static enum rw_mode parse_rw(const char *s, int line_no)
{
	for (int i = 0; i < 3; i++)
		if (!strcmp(s, rw_names[i]))
			return (enum rw_mode)i;
	die("%s:%d: bad access mode '%s': valid are ro, wo, rw", opt.config, line_no, s);
	return RW_WO;
}

static int find_region(const char *name)
{
	for (int i = 0; i < nr_regions; i++)
		if (!strcmp(regions[i].name, name))
			return i;
	return -1;
}

struct line {
	char *text;
	int no;
};

static void parse_regions(struct line *lines, int n)
{
	regions = xcalloc((size_t)n, sizeof(*regions));
	for (int i = 0; i < n; i++) {
		char *f[4];
		int nf = split_fields(lines[i].text, f, 3);
		struct region *r = &regions[nr_regions];

		if (nf < 2 || nf > 3)
			die("%s:%d: a region line is 'name, size[, init data file]'", opt.config,
			    lines[i].no);
		if (strlen(f[0]) >= MAX_NAME || !f[0][0])
			die("%s:%d: bad region name", opt.config, lines[i].no);
		if (find_region(f[0]) >= 0)
			die("%s:%d: region '%s' is defined twice", opt.config, lines[i].no, f[0]);
		strcpy(r->name, f[0]);
		r->size = (size_t)parse_ull(f[1], "region size", lines[i].no);
		if (r->size == 0)
			die("%s:%d: region '%s' has size 0", opt.config, lines[i].no, r->name);
		if (nf == 3 && strcmp(f[2], "none"))
			r->data_file = strdup(f[2]);
		nr_regions++;
	}
}

static void parse_phase(struct line *lines, int n)
{
	struct phase *p = &phases[nr_phases];

	if (n < 2)
		die("%s:%d: a phase needs a name line and a duration line", opt.config, lines[0].no);
	if (strlen(lines[0].text) >= MAX_NAME)
		die("%s:%d: phase name too long", opt.config, lines[0].no);
	strcpy(p->name, trim(lines[0].text));
	if (!strcmp(trim(lines[1].text), "once"))
		p->duration_ms = -1;
	else
		p->duration_ms = (double)parse_ull(trim(lines[1].text), "phase duration (ms)",
						   lines[1].no) * opt.scale;
	p->nr_patterns = n - 2;
	p->patterns = xcalloc((size_t)p->nr_patterns, sizeof(*p->patterns));
	for (int i = 0; i < p->nr_patterns; i++) {
		struct line *l = &lines[i + 2];
		struct pattern *a = &p->patterns[i];
		char *f[6];
		int nf = split_fields(l->text, f, 5);

		if (nf < 4 || nf > 5)
			die("%s:%d: a pattern line is 'region, random(1)/sequential(0), stride, "
			    "weight[, ro|wo|rw]'", opt.config, l->no);
		a->region = find_region(f[0]);
		if (a->region < 0)
			die("%s:%d: no region named '%s'", opt.config, l->no, f[0]);
		a->random = (int)parse_ull(f[1], "randomness (0 or 1)", l->no);
		if (a->random > 1)
			die("%s:%d: randomness must be 0 or 1, not %d", opt.config, l->no, a->random);
		a->stride = (size_t)parse_ull(f[2], "stride", l->no);
		if (a->stride == 0)
			a->stride = 1;
		a->weight = (unsigned)parse_ull(f[3], "weight", l->no);
		a->rw = nf == 5 ? parse_rw(f[4], l->no) : opt.default_rw;
		p->total_weight += a->weight;
	}
	nr_phases++;
}

static void read_config(void)
{
	FILE *f = fopen(opt.config, "r");
	char *buf = NULL;
	size_t cap = 0;
	ssize_t len;
	struct line *lines = NULL;
	int nr_lines = 0, line_no = 0, cap_lines = 0, paragraph = 0;

	if (!f)
		die("cannot open config %s: %s", opt.config, strerror(errno));
	/* paragraphs: runs of non-blank, non-comment lines */
	for (;;) {
		int blank;

		len = getline(&buf, &cap, f);
		if (len >= 0) {
			line_no++;
			while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
				buf[--len] = '\0';
			if (buf[0] == '#')
				continue;
			blank = trim(buf)[0] == '\0';
		} else {
			blank = 1;
		}
		if (!blank) {
			if (nr_lines == cap_lines) {
				cap_lines = cap_lines ? cap_lines * 2 : 64;
				lines = realloc(lines, (size_t)cap_lines * sizeof(*lines));
				if (!lines)
					die("out of memory");
			}
			lines[nr_lines].text = strdup(buf);
			lines[nr_lines].no = line_no;
			nr_lines++;
		} else if (nr_lines) {
			if (paragraph++ == 0) {
				parse_regions(lines, nr_lines);
			} else {
				phases = realloc(phases, (size_t)(nr_phases + 1) * sizeof(*phases));
				if (!phases)
					die("out of memory");
				memset(&phases[nr_phases], 0, sizeof(*phases));
				parse_phase(lines, nr_lines);
			}
			for (int i = 0; i < nr_lines; i++)
				free(lines[i].text);
			nr_lines = 0;
		}
		if (len < 0)
			break;
	}
	free(buf);
	free(lines);
	fclose(f);
	if (!nr_regions)
		die("%s: no regions (the first paragraph lists them)", opt.config);
	if (!nr_phases)
		die("%s: no phases (paragraphs after the regions)", opt.config);
}

/* ------------------------------------------------------------------ */
/* memory and accesses                                                */
/* ------------------------------------------------------------------ */

static void map_region(struct region *r)
{
	size_t len = r->size + ALIGN_2M;
	char *raw = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uintptr_t start;
	size_t head, tail;

	if (raw == MAP_FAILED)
		die("mmap %zu bytes for region %s: %s", r->size, r->name, strerror(errno));
	/* start on a 2 MiB boundary: THP can back the region from its first byte */
	start = ((uintptr_t)raw + ALIGN_2M - 1) & ~(ALIGN_2M - 1);
	head = start - (uintptr_t)raw;
	tail = len - head - r->size;
	if (head)
		munmap(raw, head);
	if (tail)
		munmap((char *)start + r->size, tail);
	r->addr = (char *)start;
	if (opt.hugepage && madvise(r->addr, r->size,
				    opt.hugepage > 0 ? MADV_HUGEPAGE : MADV_NOHUGEPAGE))
		fprintf(stderr, "accgen: madvise on %s: %s\n", r->name, strerror(errno));
	if (r->data_file) {
		int fd = open(r->data_file, O_RDONLY);
		size_t done = 0;

		if (fd < 0)
			die("region %s: cannot open %s: %s", r->name, r->data_file, strerror(errno));
		while (done < r->size) {
			ssize_t n = read(fd, r->addr + done, r->size - done);

			if (n < 0)
				die("region %s: reading %s: %s", r->name, r->data_file, strerror(errno));
			if (n == 0)
				break;
			done += (size_t)n;
		}
		close(fd);
	}
}

static uint64_t rng_state;

static inline uint64_t rnd(void)
{
	/* xorshift64* */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ULL;
}

static volatile unsigned char sink;

static void access_batch(struct pattern *a, unsigned long count)
{
	struct region *r = &regions[a->region];
	volatile unsigned char *base = (volatile unsigned char *)r->addr;
	size_t off = a->offset;
	unsigned char acc = 0;

	for (unsigned long i = 0; i < count; i++) {
		if (a->random) {
			off = rnd() % r->size;
		} else {
			off += a->stride;
			if (off >= r->size)
				off = 0;
		}
		switch (a->rw) {
		case RW_RO:
			acc += base[off];
			break;
		case RW_WO:
			base[off] = (unsigned char)i;
			break;
		case RW_RW:
			base[off] = (unsigned char)(base[off] + 1);
			break;
		}
	}
	a->offset = off;
	sink = acc;
}

static void run_phase(struct phase *p)
{
	double start = mono_now(), now = start, end = start + p->duration_ms / 1000.0;

	p->start_s = start;
	p->nr_accesses = 0;
	if (p->duration_ms < 0) {
		/* one sequential pass over each listed region */
		for (int i = 0; i < p->nr_patterns; i++) {
			struct pattern *a = &p->patterns[i];
			unsigned long count = (unsigned long)(regions[a->region].size / a->stride);
			int saved_random = a->random;

			a->random = 0;
			a->offset = regions[a->region].size - a->stride % regions[a->region].size;
			access_batch(a, count ? count : 1);
			a->random = saved_random;
			p->nr_accesses += count;
		}
		now = mono_now();
	} else if (p->total_weight == 0) {
		/* idle phase: nothing accessed */
		struct timespec ts;
		double left = end - now;

		while (left > 0) {
			ts.tv_sec = (time_t)left;
			ts.tv_nsec = (long)((left - (double)ts.tv_sec) * 1e9);
			nanosleep(&ts, NULL);
			now = mono_now();
			left = end - now;
		}
	} else {
		while (now < end) {
			unsigned long pick = (unsigned long)(rnd() % p->total_weight);

			for (int i = 0; i < p->nr_patterns; i++) {
				struct pattern *a = &p->patterns[i];

				if (pick < a->weight) {
					access_batch(a, opt.batch);
					p->nr_accesses += opt.batch;
					break;
				}
				pick -= a->weight;
			}
			now = mono_now();
		}
	}
	p->end_s = now;
	if (!opt.quiet) {
		double ms = (p->end_s - p->start_s) * 1000.0;

		printf("%s: %llu accesses/msec, %llu msecs run\n", p->name,
		       ms >= 1 ? (unsigned long long)(p->nr_accesses / ms) : p->nr_accesses,
		       (unsigned long long)(ms + 0.5));
		fflush(stdout);
	}
}

/* ------------------------------------------------------------------ */
/* ground truth                                                       */
/* ------------------------------------------------------------------ */

static void json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static void write_truth(struct phase *done, int nr_done)
{
	char tmp[4096];
	FILE *f;

	if (!opt.truth)
		return;
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", opt.truth) >= (int)sizeof(tmp))
		die("--truth path too long");
	f = fopen(tmp, "w");
	if (!f)
		die("cannot write %s: %s", tmp, strerror(errno));
	fprintf(f, "{\"format\": \"damon-eval-ground-truth\", \"version\": 1, "
		   "\"clock\": \"CLOCK_MONOTONIC\", \"pid\": %d, \"config\": ", (int)getpid());
	json_string(f, opt.config);
	fprintf(f, ", \"scale\": %g, \"page_size\": %ld, \"hugepage_advice\": \"%s\",\n"
		   " \"regions\": [",
		opt.scale, sysconf(_SC_PAGESIZE),
		opt.hugepage > 0 ? "hugepage" : (opt.hugepage < 0 ? "nohugepage" : "none"));
	for (int i = 0; i < nr_regions; i++) {
		struct region *r = &regions[i];

		fprintf(f, "%s\n  {\"name\": ", i ? "," : "");
		json_string(f, r->name);
		fprintf(f, ", \"start\": %llu, \"end\": %llu, \"size\": %zu}",
			(unsigned long long)(uintptr_t)r->addr,
			(unsigned long long)(uintptr_t)(r->addr + r->size), r->size);
	}
	fputs("],\n \"phases\": [", f);
	for (int i = 0; i < nr_done; i++) {
		struct phase *p = &done[i];
		int first = 1;

		fprintf(f, "%s\n  {\"name\": ", i ? "," : "");
		json_string(f, p->name);
		fprintf(f, ", \"start_s\": %.6f, \"end_s\": %.6f, \"nr_accesses\": %llu, "
			   "\"accessed\": [", p->start_s, p->end_s, p->nr_accesses);
		for (int j = 0; j < p->nr_patterns; j++) {
			struct pattern *a = &p->patterns[j];
			struct region *r = &regions[a->region];

			if (a->weight == 0 && p->duration_ms >= 0)
				continue;
			fprintf(f, "%s{\"region\": ", first ? "" : ", ");
			json_string(f, r->name);
			fprintf(f, ", \"start\": %llu, \"end\": %llu, \"weight\": %u, "
				   "\"pattern\": \"%s\", \"stride\": %zu, \"rw\": \"%s\"}",
				(unsigned long long)(uintptr_t)r->addr,
				(unsigned long long)(uintptr_t)(r->addr + r->size), a->weight,
				p->duration_ms < 0 ? "once" : (a->random ? "random" : "sequential"),
				a->stride, rw_names[a->rw]);
			first = 0;
		}
		fputs("]}", f);
	}
	fputs("]}\n", f);
	if (fflush(f) || fsync(fileno(f)) || fclose(f))
		die("writing %s: %s", tmp, strerror(errno));
	if (rename(tmp, opt.truth))
		die("rename %s: %s", tmp, strerror(errno));
}

/* ------------------------------------------------------------------ */

static void usage(FILE *f)
{
	fputs("usage: accgen [options] CONFIG\n"
	      "  --truth FILE           write the ground truth JSON (atomically, after each phase)\n"
	      "  --scale X              multiply phase durations by X (default 1)\n"
	      "  --repeat N             run the phases N times (default 1)\n"
	      "  --default-rw ro|wo|rw  mode of pattern lines without one (default wo, as masim)\n"
	      "  --hugepage             madvise(MADV_HUGEPAGE) every region\n"
	      "  --nohugepage           madvise(MADV_NOHUGEPAGE) every region\n"
	      "  --batch N              accesses per pattern selection (default 32768)\n"
	      "  --seed N               random seed (default 42)\n"
	      "  --quiet                no per-phase throughput lines\n"
	      "  --dry-run              parse the config, print it, exit\n",
	      f);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "truth", required_argument, NULL, 't' },
		{ "scale", required_argument, NULL, 's' },
		{ "repeat", required_argument, NULL, 'r' },
		{ "default-rw", required_argument, NULL, 'w' },
		{ "hugepage", no_argument, NULL, 'H' },
		{ "nohugepage", no_argument, NULL, 'N' },
		{ "batch", required_argument, NULL, 'b' },
		{ "seed", required_argument, NULL, 'S' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "dry-run", no_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct phase *done;
	int c, nr_done = 0;
	char *end;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 't': opt.truth = optarg; break;
		case 's':
			opt.scale = strtod(optarg, &end);
			if (*end || !(opt.scale > 0))
				die("bad --scale '%s': expected a number > 0", optarg);
			break;
		case 'r':
			opt.repeat = (int)strtol(optarg, &end, 10);
			if (*end || opt.repeat < 1)
				die("bad --repeat '%s': expected an integer >= 1", optarg);
			break;
		case 'w':
			if (!strcmp(optarg, "ro"))
				opt.default_rw = RW_RO;
			else if (!strcmp(optarg, "wo"))
				opt.default_rw = RW_WO;
			else if (!strcmp(optarg, "rw"))
				opt.default_rw = RW_RW;
			else
				die("bad --default-rw '%s': valid are ro, wo, rw", optarg);
			break;
		case 'H': opt.hugepage = 1; break;
		case 'N': opt.hugepage = -1; break;
		case 'b':
			opt.batch = strtoul(optarg, &end, 10);
			if (*end || opt.batch == 0)
				die("bad --batch '%s': expected an integer >= 1", optarg);
			break;
		case 'S': opt.seed = strtoull(optarg, &end, 10); break;
		case 'q': opt.quiet = 1; break;
		case 'd': opt.dry_run = 1; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc - 1) {
		usage(stderr);
		return 2;
	}
	opt.config = argv[optind];
	read_config();
	rng_state = opt.seed ? opt.seed : 1;
	if (opt.dry_run) {
		for (int i = 0; i < nr_regions; i++)
			printf("region %s: %zu bytes\n", regions[i].name, regions[i].size);
		for (int i = 0; i < nr_phases; i++) {
			if (phases[i].duration_ms < 0)
				printf("phase %s: once, %d patterns\n", phases[i].name,
				       phases[i].nr_patterns);
			else
				printf("phase %s: %.0f ms, %d patterns\n", phases[i].name,
				       phases[i].duration_ms, phases[i].nr_patterns);
		}
		return 0;
	}
	for (int i = 0; i < nr_regions; i++)
		map_region(&regions[i]);
	done = xcalloc((size_t)nr_phases * (size_t)opt.repeat, sizeof(*done));
	write_truth(done, 0);
	for (int rep = 0; rep < opt.repeat; rep++) {
		for (int i = 0; i < nr_phases; i++) {
			run_phase(&phases[i]);
			done[nr_done++] = phases[i];
			write_truth(done, nr_done);
		}
	}
	return 0;
}
