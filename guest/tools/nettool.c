/* nettool: TCP throughput and request/response latency, both ends.
 *
 * Built static into the default guest's initramfs (/usr/bin/nettool) by
 * scripts/build-guest.sh, and for the host by bench/net_bench.py, so the
 * same code runs on both sides of a benchmark (bench/, "virtio-net").
 *
 *   nettool server [-1] PORT
 *       Serves connections one after another (with -1: one, then exits).
 *   nettool client [-w SECONDS] HOST PORT send BYTES
 *       The client sends BYTES, the server reads them all and confirms.
 *   nettool client [-w SECONDS] HOST PORT recv BYTES
 *       The server sends BYTES, the client reads them all.
 *   nettool client [-w SECONDS] HOST PORT ping COUNT SIZE
 *       COUNT round trips: the client sends SIZE bytes, the server echoes them.
 *
 * The client times everything and prints one line:
 *   nettool: send bytes=N secs=S MBps=X
 *   nettool: recv bytes=N secs=S MBps=X
 *   nettool: ping count=N size=S min_us=A median_us=B mean_us=C p99_us=D
 * Protocol: the server greets every connection with "NETTOOL 1\n" (so a
 * client behind a port forward that accepted before the server listened can
 * tell and retry, -w), the client sends one request line, "SEND n\n",
 * "RECV n\n" or "PING count size\n"; after SEND the server answers
 * "OK n\n" once it has read n bytes. Data bytes are a fixed pattern; byte
 * counts are checked, contents are not (that costs guest CPU under
 * emulation; the tests check contents with their own tools).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BUF_SIZE (128 * 1024)
#define GREETING "NETTOOL 1\n"

static char buf[BUF_SIZE];

static void die(const char* what) {
    fprintf(stderr, "nettool: %s: %s\n", what, strerror(errno));
    exit(1);
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int write_all(int fd, const char* p, size_t n) {
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int read_all(int fd, char* p, size_t n) {
    while (n) {
        ssize_t r = read(fd, p, n);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

/* Reads one '\n'-terminated line (at most cap-1 bytes) byte by byte, so no
 * data after it is consumed. */
static int read_line(int fd, char* line, size_t cap) {
    size_t n = 0;
    while (n + 1 < cap) {
        ssize_t r = read(fd, line + n, 1);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        if (line[n] == '\n') break;
        n++;
    }
    line[n] = 0;
    return 0;
}

/* Moves `total` bytes: sends them (dir=1) or receives them (dir=0). */
static int stream(int fd, unsigned long long total, int send_dir) {
    while (total) {
        size_t chunk = total < BUF_SIZE ? (size_t)total : BUF_SIZE;
        if (send_dir) {
            if (write_all(fd, buf, chunk) < 0) return -1;
        } else {
            ssize_t r = read(fd, buf, chunk);
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) return -1;
            chunk = (size_t)r;
        }
        total -= chunk;
    }
    return 0;
}

static void nodelay(int fd) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static void serve_one(int c) {
    char line[128];
    unsigned long long n = 0, count = 0, size = 0;
    nodelay(c);
    if (write_all(c, GREETING, strlen(GREETING)) < 0 || read_line(c, line, sizeof line) < 0) return;
    if (sscanf(line, "SEND %llu", &n) == 1) {
        if (stream(c, n, 0) == 0) {
            char ok[64];
            snprintf(ok, sizeof ok, "OK %llu\n", n);
            write_all(c, ok, strlen(ok));
        }
    } else if (sscanf(line, "RECV %llu", &n) == 1) {
        stream(c, n, 1);
    } else if (sscanf(line, "PING %llu %llu", &count, &size) == 2 && size > 0 && size <= BUF_SIZE) {
        for (unsigned long long i = 0; i < count; i++)
            if (read_all(c, buf, size) < 0 || write_all(c, buf, size) < 0) break;
    } else {
        fprintf(stderr, "nettool: bad request '%s'\n", line);
    }
}

static int server(int argc, char** argv) {
    int once = 0, i = 0;
    if (i < argc && strcmp(argv[i], "-1") == 0) once = 1, i++;
    if (i >= argc) return fprintf(stderr, "nettool server: PORT missing\n"), 2;
    int port = atoi(argv[i]);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (s < 0) die("socket");
    int one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_ANY)};
    if (bind(s, (struct sockaddr*)&a, sizeof a) < 0) die("bind");
    if (listen(s, 4) < 0) die("listen");
    printf("nettool: listening port=%d\n", port);
    fflush(stdout);
    do {
        int c = accept(s, NULL, NULL);
        if (c < 0) {
            if (errno == EINTR) continue;
            die("accept");
        }
        serve_one(c);
        close(c);
    } while (!once);
    close(s);
    return 0;
}

/* Connects and waits for the greeting; retries until `wait_s` has passed.
 * HOST is a numeric IPv4 address (no resolver: the tool is static). */
static int connect_greeted(const char* host, const char* port, double wait_s) {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(atoi(port))};
    if (inet_pton(AF_INET, host, &a.sin_addr) != 1) {
        fprintf(stderr, "nettool: '%s' is not an IPv4 address\n", host);
        exit(2);
    }
    double deadline = now() + wait_s;
    for (;;) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0) die("socket");
        if (connect(fd, (struct sockaddr*)&a, sizeof a) == 0) {
            char line[64];
            if (read_line(fd, line, sizeof line) == 0 && strncmp(line, "NETTOOL", 7) == 0) {
                nodelay(fd);
                return fd;
            }
        }
        close(fd);
        if (now() >= deadline) {
            fprintf(stderr, "nettool: no nettool server at %s:%s\n", host, port);
            exit(1);
        }
        usleep(200 * 1000);
    }
}

static int cmp_double(const void* a, const void* b) {
    double x = *(const double*)a, y = *(const double*)b;
    return x < y ? -1 : x > y;
}

static int client(int argc, char** argv) {
    double wait_s = 0;
    int i = 0;
    if (i + 1 < argc && strcmp(argv[i], "-w") == 0) wait_s = atof(argv[i + 1]), i += 2;
    if (argc - i < 4) return fprintf(stderr, "nettool client: HOST PORT send|recv BYTES | ping COUNT SIZE\n"), 2;
    const char *host = argv[i], *port = argv[i + 1], *mode = argv[i + 2];
    int fd = connect_greeted(host, port, wait_s);
    char req[128];
    if (strcmp(mode, "send") == 0 || strcmp(mode, "recv") == 0) {
        unsigned long long n = strtoull(argv[i + 3], NULL, 0);
        int send_dir = mode[0] == 's';
        snprintf(req, sizeof req, "%s %llu\n", send_dir ? "SEND" : "RECV", n);
        double t0 = now();
        if (write_all(fd, req, strlen(req)) < 0) die("write request");
        if (stream(fd, n, send_dir) < 0) die(send_dir ? "send" : "receive");
        if (send_dir) {
            char ok[64];
            if (read_line(fd, ok, sizeof ok) < 0 || strncmp(ok, "OK ", 3) != 0 || strtoull(ok + 3, NULL, 10) != n)
                return fprintf(stderr, "nettool: the server did not confirm %llu bytes\n", n), 1;
        }
        double secs = now() - t0;
        printf("nettool: %s bytes=%llu secs=%.6f MBps=%.3f\n", mode, n, secs, n / secs / 1e6);
    } else if (strcmp(mode, "ping") == 0 && argc - i >= 5) {
        unsigned long count = strtoul(argv[i + 3], NULL, 0), size = strtoul(argv[i + 4], NULL, 0);
        if (count == 0 || size == 0 || size > BUF_SIZE) return fprintf(stderr, "nettool: bad ping COUNT/SIZE\n"), 2;
        double* rtt = malloc(count * sizeof *rtt);
        if (!rtt) die("malloc");
        snprintf(req, sizeof req, "PING %lu %lu\n", count, size);
        if (write_all(fd, req, strlen(req)) < 0) die("write request");
        double sum = 0;
        for (unsigned long k = 0; k < count; k++) {
            double t0 = now();
            if (write_all(fd, buf, size) < 0 || read_all(fd, buf, size) < 0) die("ping");
            rtt[k] = (now() - t0) * 1e6;
            sum += rtt[k];
        }
        qsort(rtt, count, sizeof *rtt, cmp_double);
        printf("nettool: ping count=%lu size=%lu min_us=%.1f median_us=%.1f mean_us=%.1f p99_us=%.1f\n", count, size,
               rtt[0], rtt[count / 2], sum / count, rtt[(count * 99) / 100 < count ? (count * 99) / 100 : count - 1]);
        free(rtt);
    } else {
        return fprintf(stderr, "nettool client: unknown mode '%s'\n", mode), 2;
    }
    close(fd);
    return 0;
}

int main(int argc, char** argv) {
    for (size_t k = 0; k < sizeof buf; k++) buf[k] = (char)(k * 7 + 1);
    if (argc >= 2 && strcmp(argv[1], "server") == 0) return server(argc - 2, argv + 2);
    if (argc >= 2 && strcmp(argv[1], "client") == 0) return client(argc - 2, argv + 2);
    fprintf(stderr,
            "usage: nettool server [-1] PORT\n"
            "       nettool client [-w SECONDS] HOST PORT send|recv BYTES\n"
            "       nettool client [-w SECONDS] HOST PORT ping COUNT SIZE\n");
    return 2;
}
