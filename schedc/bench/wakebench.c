/* wakebench: schedc's own schbench-like wake-up latency benchmark.
 *
 * M message threads, each with W worker threads. Every INTERVAL microseconds a message thread
 * gives each of its idle workers a request: it stamps the time (CLOCK_MONOTONIC) and wakes the
 * worker through a futex. The woken worker records now - stamp as its wake-up latency, does a
 * fixed amount of CPU work (the request) and goes back to sleep. After DURATION seconds the
 * program prints, one "name value" per line, the wake-up latency percentiles (from a fixed
 * histogram per worker: memory does not grow with the run) and the requests completed per
 * second. CPU hogs, if any, are the caller's (schedc/workloads.py starts them).
 *
 * Build: cc -O2 -pthread -Wall -Werror -o wakebench wakebench.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* Histogram of latencies in microseconds: exact below 2*SUB, then SUB buckets per power of
 * two (a bucket is at most 1/SUB of its value wide: 0.4 %), up to 2^MAX_EXP us. */
#define SUB_BITS 8
#define SUB (1u << SUB_BITS)
#define MAX_EXP 40
#define BUCKETS (2 * SUB + (MAX_EXP - SUB_BITS - 1) * SUB)

#define MAX_THREADS 1024 /* workers and message threads: 64 KiB of histogram each */

enum { IDLE = 0, POSTED = 1, STOP = 2 };

struct worker {
	_Atomic uint32_t state; /* the futex word */
	uint64_t stamp_ns;      /* written by the message thread before it posts */
	uint64_t requests;
	uint64_t max_us;
	uint64_t sink;
	uint64_t hist[BUCKETS];
	pthread_t thread;
};

struct message {
	struct worker *workers;
	int count;
	pthread_t thread;
};

static struct {
	long message_threads, workers, interval_us, work;
	double duration_s;
} opt = {2, 4, 1000, 20000, 3.0};

static _Atomic int stopping;
static pthread_barrier_t start_line;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static unsigned bucket_of(uint64_t us)
{
	unsigned exp, shift;

	if (us < 2 * SUB)
		return (unsigned)us;
	exp = 63 - (unsigned)__builtin_clzll(us); /* >= SUB_BITS + 1 */
	if (exp >= MAX_EXP)
		return BUCKETS - 1;
	shift = exp - SUB_BITS;
	return 2 * SUB + (exp - SUB_BITS - 1) * SUB + (unsigned)((us >> shift) - SUB);
}

/* The largest latency that falls into bucket b. */
static uint64_t bucket_top(unsigned b)
{
	unsigned exp, shift;

	if (b < 2 * SUB)
		return b;
	exp = (b - 2 * SUB) / SUB + SUB_BITS + 1;
	shift = exp - SUB_BITS;
	return ((((uint64_t)(b - 2 * SUB) % SUB + SUB + 1)) << shift) - 1;
}

static long futex(_Atomic uint32_t *word, int op, uint32_t value)
{
	return syscall(SYS_futex, (uint32_t *)word, op, value, NULL, NULL, 0);
}

/* The request: a fixed amount of integer work the compiler cannot drop. */
static uint64_t request(uint64_t seed, long n)
{
	uint64_t x = seed | 1;

	for (long i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
	}
	return x;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	for (;;) {
		uint32_t s;

		while ((s = atomic_load_explicit(&w->state, memory_order_acquire)) == IDLE)
			futex(&w->state, FUTEX_WAIT_PRIVATE, IDLE);
		if (s == STOP)
			return NULL;
		uint64_t late = now_ns() - w->stamp_ns;
		uint64_t us = late / 1000;

		w->hist[bucket_of(us)]++;
		if (us > w->max_us)
			w->max_us = us;
		w->sink += request(late, opt.work);
		w->requests++;
		uint32_t posted = POSTED;

		/* fails only when main has asked to stop meanwhile */
		if (!atomic_compare_exchange_strong(&w->state, &posted, IDLE))
			return NULL;
	}
}

static void *message_main(void *arg)
{
	struct message *m = arg;
	struct timespec pause = {opt.interval_us / 1000000, (opt.interval_us % 1000000) * 1000};

	pthread_barrier_wait(&start_line);
	while (!atomic_load(&stopping)) {
		for (int i = 0; i < m->count; i++) {
			struct worker *w = &m->workers[i];

			if (atomic_load_explicit(&w->state, memory_order_relaxed) != IDLE)
				continue; /* still busy with its last request */
			w->stamp_ns = now_ns();
			atomic_store_explicit(&w->state, POSTED, memory_order_release);
			futex(&w->state, FUTEX_WAKE_PRIVATE, 1);
		}
		nanosleep(&pause, NULL);
	}
	return NULL;
}

static void usage(FILE *to)
{
	fprintf(to,
		"usage: wakebench [-m MESSAGE_THREADS] [-w WORKERS] [-d SECONDS] [-i INTERVAL_US] "
		"[-r WORK]\n"
		"  -m  message threads (1-%d, default 2)\n"
		"  -w  worker threads per message thread (1-%d, default 4)\n"
		"  -d  seconds to run (0.1-3600, default 3)\n"
		"  -i  microseconds a message thread sleeps between rounds of requests "
		"(1-1000000, default 1000)\n"
		"  -r  loop iterations of CPU work per request (0-1000000000, default 20000)\n",
		MAX_THREADS, MAX_THREADS);
}

static void die_usage(const char *what, const char *arg)
{
	fprintf(stderr, "wakebench: %s '%s'\n", what, arg);
	usage(stderr);
	exit(2);
}

static long whole(char flag, const char *text, long lo, long hi)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(text, &end, 10);
	if (errno || end == text || *end || v < lo || v > hi) {
		fprintf(stderr, "wakebench: -%c: expected a whole number from %ld to %ld, got '%s'\n",
			flag, lo, hi, text);
		usage(stderr);
		exit(2);
	}
	return v;
}

static double seconds(const char *text)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(text, &end);
	if (errno || end == text || *end || !(v >= 0.1 && v <= 3600))
		die_usage("-d: expected seconds from 0.1 to 3600, got", text);
	return v;
}

static uint64_t percentile(const uint64_t *hist, uint64_t total, double p)
{
	uint64_t rank = (uint64_t)(p * (double)total), seen = 0;

	if ((double)rank < p * (double)total)
		rank++; /* ceil */
	if (rank == 0)
		rank = 1;
	for (unsigned b = 0; b < BUCKETS; b++) {
		seen += hist[b];
		if (seen >= rank)
			return bucket_top(b);
	}
	return bucket_top(BUCKETS - 1);
}

int main(int argc, char **argv)
{
	int c;

	while ((c = getopt(argc, argv, ":m:w:d:i:r:h")) != -1) {
		switch (c) {
		case 'm':
			opt.message_threads = whole('m', optarg, 1, MAX_THREADS);
			break;
		case 'w':
			opt.workers = whole('w', optarg, 1, MAX_THREADS);
			break;
		case 'd':
			opt.duration_s = seconds(optarg);
			break;
		case 'i':
			opt.interval_us = whole('i', optarg, 1, 1000000);
			break;
		case 'r':
			opt.work = whole('r', optarg, 0, 1000000000);
			break;
		case 'h':
			usage(stdout);
			return 0;
		case ':': {
			char flag[3] = {'-', (char)optopt, 0};

			die_usage("this option needs a value:", flag);
			break;
		}
		default: {
			char flag[3] = {'-', (char)optopt, 0};

			die_usage("unknown option", flag);
		}
		}
	}
	if (optind < argc)
		die_usage("unexpected argument", argv[optind]);
	if (opt.message_threads * (1 + opt.workers) > MAX_THREADS) {
		fprintf(stderr,
			"wakebench: -m %ld with -w %ld is %ld threads; at most %d (lower -m or -w)\n",
			opt.message_threads, opt.workers, opt.message_threads * (1 + opt.workers),
			MAX_THREADS);
		return 2;
	}

	long m_count = opt.message_threads, w_count = m_count * opt.workers;
	struct message *messages = calloc((size_t)m_count, sizeof(*messages));
	struct worker *workers = calloc((size_t)w_count, sizeof(*workers));

	if (!messages || !workers) {
		fprintf(stderr, "wakebench: out of memory for %ld threads\n", m_count + w_count);
		return 1;
	}
	pthread_barrier_init(&start_line, NULL, (unsigned)m_count + 1);
	for (long i = 0; i < w_count; i++) {
		int err = pthread_create(&workers[i].thread, NULL, worker_main, &workers[i]);

		if (err) {
			fprintf(stderr, "wakebench: cannot start worker thread %ld: %s\n", i,
				strerror(err));
			return 1;
		}
	}
	for (long i = 0; i < m_count; i++) {
		messages[i].workers = &workers[i * opt.workers];
		messages[i].count = (int)opt.workers;
		int err = pthread_create(&messages[i].thread, NULL, message_main, &messages[i]);

		if (err) {
			fprintf(stderr, "wakebench: cannot start message thread %ld: %s\n", i,
				strerror(err));
			return 1;
		}
	}

	pthread_barrier_wait(&start_line);
	uint64_t start = now_ns(), until = start + (uint64_t)(opt.duration_s * 1e9);
	struct timespec end_ts = {(time_t)(until / 1000000000u), (long)(until % 1000000000u)};

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &end_ts, NULL) == EINTR)
		;
	atomic_store(&stopping, 1);
	uint64_t elapsed = now_ns() - start;

	for (long i = 0; i < m_count; i++)
		pthread_join(messages[i].thread, NULL);
	for (long i = 0; i < w_count; i++) {
		atomic_store(&workers[i].state, STOP);
		futex(&workers[i].state, FUTEX_WAKE_PRIVATE, 1);
	}

	static uint64_t hist[BUCKETS];
	uint64_t requests = 0, max_us = 0, samples = 0;

	for (long i = 0; i < w_count; i++) {
		pthread_join(workers[i].thread, NULL);
		for (unsigned b = 0; b < BUCKETS; b++) {
			hist[b] += workers[i].hist[b];
			samples += workers[i].hist[b];
		}
		requests += workers[i].requests;
		if (workers[i].max_us > max_us)
			max_us = workers[i].max_us;
	}

	double secs = (double)elapsed / 1e9;

	printf("# wakebench: %ld message threads x %ld workers, %.3f s, %ld us interval, "
	       "work %ld\n",
	       m_count, opt.workers, secs, opt.interval_us, opt.work);
	printf("message_threads %ld\nworkers %ld\nthreads %ld\n", m_count, w_count,
	       m_count + w_count);
	printf("duration_s %.3f\nsamples %llu\n", secs, (unsigned long long)samples);
	if (samples) {
		printf("p50_us %llu\n", (unsigned long long)percentile(hist, samples, 0.50));
		printf("p90_us %llu\n", (unsigned long long)percentile(hist, samples, 0.90));
		printf("p99_us %llu\n", (unsigned long long)percentile(hist, samples, 0.99));
		printf("max_us %llu\n", (unsigned long long)max_us);
	}
	printf("requests %llu\nrequests_per_s %.1f\n", (unsigned long long)requests,
	       (double)requests / secs);
	free(messages);
	free(workers);
	return 0;
}
