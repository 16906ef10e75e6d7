// e2e_scale.c — three instances behind a real HAProxy on 127.0.0.1, running
// the shipped deploy/haproxy.cfg (its ports, socket and check intervals set
// through the environment variables it reads; the checks every 200 ms):
//   * bench_load's retry accounting (--retries, --json) against a closed port;
//   * spread: 64 requests at 16 in flight (bench_load through HAProxy) all
//     succeed, every instance serves some (from each instance's /metrics) and
//     the per-instance counts add up to the requests;
//   * rolling restart: each instance in turn gets SIGTERM (with --drain-grace:
//     /ready 503 at once, HAProxy takes it out, in-flight work finishes, exit
//     0) and is started again on its port, while a load of 16 in flight runs:
//     no request fails, not even on its first attempt;
//   * instance loss: one instance gets SIGKILL with requests on it while a load
//     with client retries runs: only requests that were in flight on it fail
//     (their first attempt, a 502 from HAProxy), every one succeeds on retry,
//     none is lost, the other instances never answer an error; the time until
//     HAProxy marks it DOWN is measured.
// First, without a balancer, the drain grace alone (--drain-grace): after
// SIGTERM /ready says 503 at once, a new request is still served, then the
// grace ends (no request for its length), the drain runs and the process
// exits 0.
// Every process started here (instances, HAProxy, bench_load) is stopped at
// the end, also when a check failed (and killed with the test if it dies:
// PR_SET_PDEATHSIG). Skipped, with the reason, where haproxy is not installed
// (scripts/install-deps.sh installs it; the grace case still runs, and fails
// the test if it fails) or the fixture data is missing.
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "server.h"

extern char **environ;

#define N_INST 3
#define CONCURRENCY 16
#define SPREAD_REQUESTS 64
#define ROLLING_MIN_REQUESTS 64
#define LOSS_REQUESTS 96
#define LOSS_RETRIES 3
#define MAX_ATTEMPTS (1 + LOSS_RETRIES)
#define MAX_LOAD_REQUESTS 4000 // bound of the rolling-restart load
#define VICTIM 1               // am2 dies
#define DRAIN_GRACE "1"        // --drain-grace of the instances behind HAProxy (s)
#define GRACE_ALONE "3"        // --drain-grace of the instance of case_grace (s)

// ---------------------------------------------------------------- processes
typedef struct {
    char name[8]; // the HAProxy server name: am1..am3
    int port;
    pid_t pid;
    char log[300];
} instance;

typedef struct {
    char dir[64];       // temp dir: logs, the stats socket
    char model[1024], wav[1024], haproxy[256];
    char socket[100];   // HAProxy's stats socket (fits sun_path)
    int port;           // HAProxy's frontend
    pid_t haproxy_pid;
    char haproxy_log[300];
    instance inst[N_INST];
    void *audio;
    size_t audio_len;
} cluster;

// fork + exec with stdout and stderr to log; the child dies with this thread
// (only the main thread spawns). Nothing in the child allocates.
static pid_t spawn(char *const argv[], char *const envp[], const char *log) {
    const pid_t parent = getpid();
    const pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(127);
        const int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        execve(argv[0], argv, envp);
        _exit(127);
    }
    return pid;
}

// Wait up to timeout_s for pid to exit; its wait status, or -1 (still running).
static int wait_exit(pid_t pid, double timeout_s) {
    const double until = am_time_s() + timeout_s;
    for (int i = 0; i < 100000; i++) {
        int status;
        const pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) return status;
        if (r < 0) return -2;
        if (am_time_s() > until) break;
        usleep(10 * 1000);
    }
    return -1;
}

// SIGTERM, then SIGKILL if it does not go within timeout_s; reaps it.
static void stop_pid(pid_t *pid, double timeout_s) {
    if (*pid <= 0) return;
    kill(*pid, SIGTERM);
    if (wait_exit(*pid, timeout_s) == -1) {
        kill(*pid, SIGKILL);
        waitpid(*pid, NULL, 0);
    }
    *pid = 0;
}

// A free TCP port on 127.0.0.1 (closed again: whoever binds it next may lose a race).
static int free_port(void) {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int port = 0;
    if (fd >= 0 && !bind(fd, (struct sockaddr *)&a, sizeof a) && !getsockname(fd, (struct sockaddr *)&a, &len))
        port = ntohs(a.sin_port);
    if (fd >= 0) close(fd);
    return port;
}

// The environment of a child, in storage (cap entries): ours plus the extra "NAME=value" entries.
static char **child_env(char **extra, int n_extra, char **storage, int cap) {
    int n = 0;
    for (char **e = environ; *e && n < cap - n_extra - 1; e++) storage[n++] = *e;
    for (int i = 0; i < n_extra; i++) storage[n++] = extra[i];
    storage[n] = NULL;
    return storage;
}

// Start an instance named name (its log: <dir>/<name>.log) on port (0 = ephemeral; the port is then
// read from its log) with --drain-grace grace. 0 or -1.
static int instance_start(const cluster *c, instance *in, const char *name, int port, const char *grace) {
    char own[sizeof in->name];
    snprintf(own, sizeof own, "%s", name); // name may be in->name
    memcpy(in->name, own, sizeof own);
    snprintf(in->log, sizeof in->log, "%s/%s.log", c->dir, own);
    char port_s[16];
    snprintf(port_s, sizeof port_s, "%d", port);
    char *argv[] = {AM_BINARY_DIR "/amanuensis", "serve", "-m", (char *)c->model, "--host", "127.0.0.1", "--port",
                    port_s, "--drain-grace", (char *)grace, NULL};
    static char threads[] = "AMANUENSIS_THREADS=1"; // three instances share two cores
    char *extra[] = {threads};
    char *env_store[512];
    char **envp = child_env(extra, 1, env_store, 512);
    // each start appends to the log: count the "listening" lines before
    char *before = am_test_read_file(in->log, NULL);
    int n_before = 0;
    for (const char *p = before; p && (p = strstr(p, "listening on http://")); p++) n_before++;
    free(before);
    in->pid = spawn(argv, envp, in->log);
    if (in->pid < 0) return -1;
    for (int k = 0; k < 600; k++) { // 60 s
        usleep(100 * 1000);
        char *text = am_test_read_file(in->log, NULL);
        int n = 0, got = 0;
        for (const char *p = text; p && (p = strstr(p, "listening on http://")); p++)
            if (++n > n_before) {
                const char *colon = strchr(p + strlen("listening on http://"), ':');
                got = colon ? atoi(colon + 1) : 0;
            }
        free(text);
        if (got > 0) {
            in->port = got;
            return 0;
        }
        if (wait_exit(in->pid, 0) != -1) {
            in->pid = 0;
            return -1;
        }
    }
    return -1;
}

// ---------------------------------------------------------------- HAProxy's stats socket
// "show stat" (CSV) into a malloc'd string; NULL when the socket does not answer.
static char *haproxy_show_stat(const cluster *c) {
    const int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0) return NULL;
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s", c->socket);
    struct timeval tv = {2, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    http_body b = {0};
    if (!connect(fd, (struct sockaddr *)&a, sizeof a) && write(fd, "show stat\n", 10) == 10) {
        char buf[16384];
        for (int k = 0; k < 1000; k++) {
            const ssize_t r = read(fd, buf, sizeof buf);
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) break;
            http_body_write(buf, 1, (size_t)r, &b);
        }
    }
    close(fd);
    return b.data;
}

// Field `field` of backend server `sv` ("amanuensis" proxy) from a show-stat CSV; 0 or -1.
static int stat_field(const char *csv, const char *sv, const char *field, char *out, size_t n) {
    if (!csv || strncmp(csv, "# ", 2)) return -1;
    int col = -1, k = 0;
    const char *p = csv + 2;
    while (*p && *p != '\n') { // the header: which column
        const size_t len = strcspn(p, ",\n");
        if (len == strlen(field) && !strncmp(p, field, len)) col = k;
        p += len;
        if (*p == ',') p++;
        k++;
    }
    if (col < 0) return -1;
    char prefix[64];
    snprintf(prefix, sizeof prefix, "amanuensis,%s,", sv);
    for (const char *line = strchr(csv, '\n'); line && line[1]; line = strchr(line + 1, '\n')) {
        if (strncmp(line + 1, prefix, strlen(prefix))) continue;
        const char *f = line + 1;
        for (int i = 0; i < col && f; i++) {
            f = strpbrk(f, ",\n");
            if (f && *f == ',') f++;
            else f = NULL;
        }
        if (!f) return -1;
        const size_t len = strcspn(f, ",\n");
        snprintf(out, n, "%.*s", (int)len, f);
        return 0;
    }
    return -1;
}

// A server's status ("UP", "DOWN", "UP 1/2", ...) into out; 0 or -1.
static int server_status(const cluster *c, const char *sv, char *out, size_t n) {
    char *csv = haproxy_show_stat(c);
    const int rc = stat_field(csv, sv, "status", out, n);
    free(csv);
    return rc;
}

static long stat_long(const cluster *c, const char *sv, const char *field) {
    char *csv = haproxy_show_stat(c);
    char v[64];
    const long r = stat_field(csv, sv, field, v, sizeof v) ? -1 : atol(v);
    free(csv);
    return r;
}

// Poll until sv's status starts with want ("UP" exactly when exact); seconds taken, or -1 after timeout_s.
static double wait_status(const cluster *c, const char *sv, const char *want, int exact, double timeout_s) {
    const double t0 = am_time_s();
    for (int k = 0; k < 100000; k++) {
        char st[64];
        if (!server_status(c, sv, st, sizeof st) &&
            (exact ? !strcmp(st, want) : !strncmp(st, want, strlen(want))))
            return am_time_s() - t0;
        if (am_time_s() - t0 > timeout_s) break;
        usleep(10 * 1000);
    }
    return -1;
}

// Start HAProxy on deploy/haproxy.cfg for the instances; waits until all are UP. 0 or -1.
static int haproxy_start(cluster *c) {
    snprintf(c->socket, sizeof c->socket, "%s/haproxy.sock", c->dir);
    snprintf(c->haproxy_log, sizeof c->haproxy_log, "%s/haproxy.log", c->dir);
    for (int attempt = 0; attempt < 3; attempt++) { // a port taken in between: new ports
        c->port = free_port();
        const int stats_port = free_port();
        static char vars[N_INST + 12][160];
        int nv = 0;
        snprintf(vars[nv++], sizeof vars[0], "AM_HAPROXY_BIND=127.0.0.1:%d", c->port);
        snprintf(vars[nv++], sizeof vars[0], "AM_HAPROXY_STATS_BIND=127.0.0.1:%d", stats_port);
        snprintf(vars[nv++], sizeof vars[0], "AM_HAPROXY_SOCKET=%s", c->socket);
        snprintf(vars[nv++], sizeof vars[0], "AM_HAPROXY_LOG=stderr");
        snprintf(vars[nv++], sizeof vars[0], "AM_HAPROXY_MAXCONN=256"); // fits a user's fd limit
        snprintf(vars[nv++], sizeof vars[0], "AM_CHECK_INTER=200ms");
        snprintf(vars[nv++], sizeof vars[0], "AM_CHECK_FASTINTER=100ms");
        snprintf(vars[nv++], sizeof vars[0], "AM_CHECK_FALL=2");
        snprintf(vars[nv++], sizeof vars[0], "AM_CHECK_RISE=2");
        for (int i = 0; i < N_INST; i++)
            snprintf(vars[nv++], sizeof vars[0], "AM_INSTANCE%d=127.0.0.1:%d", i + 1, c->inst[i].port);
        char *extra[N_INST + 12];
        for (int i = 0; i < nv; i++) extra[i] = vars[i];
        char *env_store[512];
        char **envp = child_env(extra, nv, env_store, 512);
        char cfg[1100];
        snprintf(cfg, sizeof cfg, "%s/deploy/haproxy.cfg", AM_SOURCE_DIR);
        char *argv[] = {c->haproxy, "-db", "-f", cfg, NULL};
        c->haproxy_pid = spawn(argv, envp, c->haproxy_log);
        if (c->haproxy_pid < 0) return -1;
        int up = 1;
        for (int i = 0; i < N_INST && up; i++) up = wait_status(c, c->inst[i].name, "UP", 1, 30) >= 0;
        if (up) return 0;
        stop_pid(&c->haproxy_pid, 5);
    }
    return -1;
}

// ---------------------------------------------------------------- per-instance /metrics
// Transcriptions answered by an instance so far: 200s into *ok, 5xx into *err. 0 or -1.
static int instance_counts(const instance *in, long *ok, long *err) {
    char *m = NULL;
    *ok = *err = 0;
    if (http_get(in->port, "/metrics", &m) != 200) {
        free(m);
        return -1;
    }
    static const char key[] = "amanuensis_http_requests_total{endpoint=\"transcriptions\",code=\"";
    for (const char *p = m; (p = strstr(p, key)); p++) {
        const int code = atoi(p + strlen(key));
        const char *v = strchr(p, '}');
        const long n = v ? atol(v + 1) : 0;
        if (code == 200) *ok += n;
        if (code >= 500) *err += n;
    }
    free(m);
    return 0;
}

// What an instance's /ready says.
typedef struct {
    long status;        // HTTP status (0: no answer)
    int pending;        // "pending_results": requests admitted, not answered (-1 if absent)
    int queue_depth;    // "queue_depth": waiting for audio decoding or the encoder (-1 if absent)
    int active_windows; // "active_windows": windows decoding (-1 if absent)
} ready_info;

static int jint(const cJSON *j, const char *key) {
    const cJSON *v = cJSON_GetObjectItem(j, key);
    return cJSON_IsNumber(v) ? v->valueint : -1;
}

static ready_info instance_ready(const instance *in) {
    char *body = NULL;
    ready_info r = {0};
    r.status = http_get(in->port, "/ready", &body);
    cJSON *j = body ? cJSON_Parse(body) : NULL;
    r.pending = jint(j, "pending_results");
    r.queue_depth = jint(j, "queue_depth");
    r.active_windows = jint(j, "active_windows");
    cJSON_Delete(j);
    free(body);
    return r;
}

// ---------------------------------------------------------------- the load (a thread, libcurl multi)
typedef struct {
    int attempts;
    long status[MAX_ATTEMPTS];     // HTTP status per attempt (0: transport error)
    char server[MAX_ATTEMPTS][8];  // X-Amanuensis-Instance per attempt ("" if none)
    double t_start[MAX_ATTEMPTS];  // when each attempt was started
} req_rec;

typedef struct {
    CURL *h;
    curl_mime *mime;
    int idx;          // request served by this slot, -1 = free
    double retry_at;  // > 0: backing off until then
    char server[8];
} slot;

typedef struct {
    char url[128];
    const void *audio;
    size_t audio_len;
    int max_requests, retries;
    double deadline;        // absolute: past it, everything in flight is abandoned (counted as failed)
    atomic_int stop;        // start no new requests
    atomic_int started, finished;
    req_rec *recs;
    unsigned seed;
    slot slots[CONCURRENCY];
    pthread_t th;
} load;

static size_t load_header(char *p, size_t size, size_t n, void *user) {
    slot *s = user;
    static const char name[] = "x-amanuensis-instance:";
    const size_t len = size * n;
    if (len > sizeof name && !strncasecmp(p, name, sizeof name - 1)) {
        const char *v = p + sizeof name - 1;
        while (*v == ' ') v++;
        size_t k = 0;
        while (v + k < p + len && v[k] != '\r' && v[k] != '\n' && k + 1 < sizeof s->server) k++;
        snprintf(s->server, sizeof s->server, "%.*s", (int)k, v);
    }
    return len;
}

static size_t load_discard(char *p, size_t size, size_t n, void *user) {
    (void)p, (void)user;
    return size * n;
}

static void load_attempt(load *l, CURLM *m, slot *s) {
    req_rec *r = &l->recs[s->idx];
    s->h = curl_easy_init();
    s->mime = curl_mime_init(s->h);
    curl_mimepart *part = curl_mime_addpart(s->mime);
    curl_mime_name(part, "file");
    curl_mime_data(part, l->audio, l->audio_len);
    curl_mime_filename(part, "jfk.wav");
    const char *fields[] = {"model", "whisper-1", "response_format", "json", "temperature_inc", "0"};
    for (size_t i = 0; i < AM_ARRAY_LEN(fields); i += 2) {
        part = curl_mime_addpart(s->mime);
        curl_mime_name(part, fields[i]);
        curl_mime_data(part, fields[i + 1], CURL_ZERO_TERMINATED);
    }
    curl_easy_setopt(s->h, CURLOPT_URL, l->url);
    curl_easy_setopt(s->h, CURLOPT_MIMEPOST, s->mime);
    curl_easy_setopt(s->h, CURLOPT_WRITEFUNCTION, load_discard);
    curl_easy_setopt(s->h, CURLOPT_HEADERFUNCTION, load_header);
    curl_easy_setopt(s->h, CURLOPT_HEADERDATA, s);
    curl_easy_setopt(s->h, CURLOPT_PRIVATE, s);
    curl_easy_setopt(s->h, CURLOPT_TIMEOUT, 120L);
    // a connection per request: libcurl silently resends a request whose reused connection closed
    // before any response (HAProxy closes a kept-alive client connection that way when the instance
    // dies), which would hide that failure from the counts here
    curl_easy_setopt(s->h, CURLOPT_FORBID_REUSE, 1L);
    s->server[0] = 0;
    s->retry_at = 0;
    r->t_start[r->attempts] = am_time_s();
    curl_multi_add_handle(m, s->h);
}

static void load_end_attempt(CURLM *m, slot *s) {
    curl_multi_remove_handle(m, s->h);
    curl_easy_cleanup(s->h);
    curl_mime_free(s->mime);
    s->h = NULL;
    s->mime = NULL;
}

static void *load_main(void *arg) {
    load *l = arg;
    CURLM *m = curl_multi_init();
    for (int i = 0; i < CONCURRENCY; i++) l->slots[i].idx = -1;
    for (int iter = 0; iter < 10000000; iter++) {
        const double now = am_time_s();
        int busy = 0;
        for (int i = 0; i < CONCURRENCY; i++) {
            slot *s = &l->slots[i];
            if (s->idx < 0 && !atomic_load(&l->stop) && atomic_load(&l->started) < l->max_requests &&
                now < l->deadline) {
                s->idx = atomic_fetch_add(&l->started, 1);
                load_attempt(l, m, s);
            } else if (s->idx >= 0 && !s->h && s->retry_at <= now) load_attempt(l, m, s);
            busy += s->idx >= 0;
        }
        if (!busy) break;
        if (now > l->deadline) { // abandon what is left: every such request counts as failed
            for (int i = 0; i < CONCURRENCY; i++) {
                slot *s = &l->slots[i];
                if (s->idx < 0) continue;
                if (s->h) load_end_attempt(m, s);
                req_rec *r = &l->recs[s->idx];
                if (r->attempts < MAX_ATTEMPTS) r->status[r->attempts++] = 0;
                s->idx = -1;
                atomic_fetch_add(&l->finished, 1);
            }
            break;
        }
        int running;
        curl_multi_perform(m, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(m, &left))) {
            if (msg->msg != CURLMSG_DONE) continue;
            slot *s;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&s);
            long code = 0;
            if (msg->data.result == CURLE_OK) curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &code);
            load_end_attempt(m, s);
            req_rec *r = &l->recs[s->idx];
            r->status[r->attempts] = code;
            snprintf(r->server[r->attempts], sizeof r->server[0], "%s", s->server);
            r->attempts++;
            if ((code == 0 || code >= 500) && r->attempts <= l->retries) {
                // exponential backoff with jitter: [0.5, 1] * 50 ms * 2^(k-1)
                const double base = 0.05 * (double)(1 << (r->attempts - 1));
                s->retry_at = am_time_s() + base * (0.5 + 0.5 * rand_r(&l->seed) / (double)RAND_MAX);
                continue;
            }
            s->idx = -1;
            atomic_fetch_add(&l->finished, 1);
        }
        curl_multi_poll(m, NULL, 0, 20, NULL);
    }
    curl_multi_cleanup(m);
    return NULL;
}

static int load_start(load *l, const cluster *c, int max_requests, int retries, double duration_s) {
    memset(l, 0, sizeof *l);
    snprintf(l->url, sizeof l->url, "http://127.0.0.1:%d/v1/audio/transcriptions", c->port);
    l->audio = c->audio;
    l->audio_len = c->audio_len;
    l->max_requests = max_requests;
    l->retries = retries;
    l->deadline = am_time_s() + duration_s;
    l->seed = (unsigned)getpid();
    l->recs = calloc((size_t)max_requests, sizeof *l->recs);
    if (!l->recs) return -1;
    if (pthread_create(&l->th, NULL, load_main, l)) {
        free(l->recs);
        l->recs = NULL;
        return -1;
    }
    return 0;
}

static void load_join(load *l) {
    atomic_store(&l->stop, 1);
    pthread_join(l->th, NULL);
}

// Wait (bounded) until at least n requests finished; returns the count.
static int load_wait_finished(load *l, int n, double timeout_s) {
    const double until = am_time_s() + timeout_s;
    while (atomic_load(&l->finished) < n && am_time_s() < until) usleep(20 * 1000);
    return atomic_load(&l->finished);
}

typedef struct {
    int requests;       // requests ended
    int ok;             // ended with a 200
    int first_failures; // first attempt: 5xx or transport error
    int final_failures; // still failing after the retries
    int retries;        // extra attempts
} load_summary;

static load_summary load_summarize(const load *l) {
    load_summary s = {0};
    const int n = atomic_load(&l->started);
    for (int i = 0; i < n; i++) {
        const req_rec *r = &l->recs[i];
        if (r->attempts == 0) continue;
        s.requests++;
        const long first = r->status[0], last = r->status[r->attempts - 1];
        s.first_failures += first == 0 || first >= 500;
        s.final_failures += last != 200;
        s.ok += last == 200;
        s.retries += r->attempts - 1;
    }
    return s;
}

// ---------------------------------------------------------------- the cases
static int find_haproxy(char *out, size_t n) {
    const char *path = getenv("PATH");
    char dirs[4096];
    snprintf(dirs, sizeof dirs, "%s:/usr/sbin:/usr/local/sbin:/sbin", path ? path : "");
    char *save = NULL;
    for (char *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        snprintf(out, n, "%s/haproxy", d);
        if (access(out, X_OK) == 0) return 1;
    }
    return 0;
}

// Run bench_load with args into c->dir/bench_load.json (bounded); its exit status (-1: did not end), and
// the parsed JSON in *out.
static int run_bench_load(const cluster *c, char *const *args, cJSON **out) {
    char log[320];
    snprintf(log, sizeof log, "%s/bench_load.out", c->dir);
    unlink(log);
    char *env_store[512];
    char **envp = child_env(NULL, 0, env_store, 512);
    pid_t pid = spawn(args, envp, log);
    int st = pid > 0 ? wait_exit(pid, 240) : -1;
    if (st == -1 && pid > 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    char *text = am_test_read_file(log, NULL);
    const char *brace = text ? strchr(text, '{') : NULL;
    *out = brace ? cJSON_Parse(brace) : NULL;
    if (!*out) fprintf(stderr, "bench_load output: %s\n", text ? text : "(none)");
    free(text);
    return st >= 0 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static double jnum(const cJSON *j, const char *key) {
    const cJSON *v = cJSON_GetObjectItem(j, key);
    return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

// bench_load --retries against a port nobody listens on: every request fails, is retried, and is counted.
static void case_bench_retries(const cluster *c) {
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", free_port());
    char *args[] = {AM_BINARY_DIR "/bench_load", "--url", url, "--file", (char *)c->wav, "--requests", "4",
                    "--concurrency", "2", "--retries", "2", "--retry-base-ms", "10", "--json", NULL};
    cJSON *j = NULL;
    const int rc = run_bench_load(c, args, &j);
    CHECKF(rc == 1, "bench_load against a closed port: exit %d (expected 1)", rc);
    CHECKF(jnum(j, "requests") == 4 && jnum(j, "first_attempt_failures") == 4 &&
               jnum(j, "first_attempt_transport_errors") == 4 && jnum(j, "retries") == 8 &&
               jnum(j, "final_failures") == 4 && jnum(j, "ok") == 0,
           "bench_load retry accounting: requests %g, first failures %g, retries %g, final failures %g",
           jnum(j, "requests"), jnum(j, "first_attempt_failures"), jnum(j, "retries"), jnum(j, "final_failures"));
    cJSON_Delete(j);
}

// 64 requests at 16 in flight through HAProxy (bench_load): all succeed, all instances serve.
static void case_spread(const cluster *c) {
    long ok0[N_INST], err0[N_INST];
    for (int i = 0; i < N_INST; i++) CHECK(instance_counts(&c->inst[i], &ok0[i], &err0[i]) == 0);
    char url[64], n_s[16], conc_s[16];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", c->port);
    snprintf(n_s, sizeof n_s, "%d", SPREAD_REQUESTS);
    snprintf(conc_s, sizeof conc_s, "%d", CONCURRENCY);
    char *args[] = {AM_BINARY_DIR "/bench_load", "--url", url, "--file", (char *)c->wav, "--requests", n_s,
                    "--concurrency", conc_s, "--field", "temperature_inc=0", "--retries", "2", "--json", NULL};
    cJSON *j = NULL;
    const int rc = run_bench_load(c, args, &j);
    CHECKF(rc == 0, "spread: bench_load exit %d", rc);
    CHECKF(jnum(j, "ok") == SPREAD_REQUESTS && jnum(j, "first_attempt_failures") == 0 &&
               jnum(j, "final_failures") == 0,
           "spread: %g of %d ok, %g first-attempt failures, %g final failures", jnum(j, "ok"), SPREAD_REQUESTS,
           jnum(j, "first_attempt_failures"), jnum(j, "final_failures"));
    long sum = 0, per[N_INST];
    for (int i = 0; i < N_INST; i++) {
        long ok, err;
        CHECK(instance_counts(&c->inst[i], &ok, &err) == 0);
        per[i] = ok - ok0[i];
        sum += per[i];
        CHECKF(per[i] >= 1, "spread: %s served no request", c->inst[i].name);
        CHECKF(err == err0[i], "spread: %s answered %ld 5xx", c->inst[i].name, err - err0[i]);
    }
    CHECKF(sum == SPREAD_REQUESTS, "spread: the instances served %ld transcriptions, %d were sent", sum,
           SPREAD_REQUESTS);
    printf("  spread: %d requests at %d in flight in %.1f s (%.2f req/s): am1 %ld, am2 %ld, am3 %ld (from their "
           "/metrics)\n",
           SPREAD_REQUESTS, CONCURRENCY, jnum(j, "wall_s"), jnum(j, "requests_per_s"), per[0], per[1], per[2]);
    cJSON_Delete(j);
}

// Each instance in turn: SIGTERM (drain with grace), exit 0, start again; the load never sees an error.
static void case_rolling(cluster *c) {
    load l;
    if (load_start(&l, c, MAX_LOAD_REQUESTS, 0, 240)) {
        CHECKF(0, "rolling: cannot start the load");
        return;
    }
    load_wait_finished(&l, 8, 60);
    const double t_all = am_time_s();
    double t_term[N_INST], t_gone[N_INST];
    for (int i = 0; i < N_INST; i++) {
        instance *in = &c->inst[i];
        const int f0 = atomic_load(&l.finished);
        const double t0 = am_time_s();
        t_term[i] = t0;
        kill(in->pid, SIGTERM);
        // /ready turns 503 as soon as the signal is handled
        long ready = 0;
        for (int k = 0; k < 500 && ready != 503; k++) {
            ready = instance_ready(in).status;
            if (ready != 503) usleep(10 * 1000);
        }
        CHECKF(ready == 503, "rolling: %s /ready answered %ld after SIGTERM", in->name, ready);
        const double t_out = wait_status(c, in->name, "DOWN", 0, 30);
        CHECKF(t_out >= 0, "rolling: HAProxy never took %s out", in->name);
        const int st = wait_exit(in->pid, 60);
        CHECKF(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "rolling: %s exit status %d", in->name, st);
        if (st == -1) {
            kill(in->pid, SIGKILL);
            waitpid(in->pid, NULL, 0);
        }
        in->pid = 0;
        t_gone[i] = am_time_s();
        const double t_exit = t_gone[i] - t0;
        char *log = am_test_read_file(in->log, NULL); // its last drain report
        const char *drained = NULL;
        for (const char *p = log; p && (p = strstr(p, "amanuensis: drained in")); p++) drained = p;
        CHECKF(drained && strstr(drained, "(0 request(s) cut off"), "rolling: %s cut requests off at the drain",
               in->name);
        free(log);
        CHECKF(instance_start(c, in, in->name, in->port, DRAIN_GRACE) == 0,
               "rolling: %s did not start again on port %d", in->name, in->port);
        const double t_up = wait_status(c, in->name, "UP", 1, 30);
        CHECKF(t_up >= 0, "rolling: HAProxy never put %s back", in->name);
        const int f1 = atomic_load(&l.finished);
        CHECKF(f1 > f0, "rolling: no request finished while %s restarted", in->name);
        printf("  rolling: %s SIGTERM -> out of HAProxy %.2f s, exited (drained) %.2f s, back UP %.2f s later; "
               "%d requests finished meanwhile\n",
               in->name, t_out, t_exit, t_up, f1 - f0);
    }
    const double t_roll = am_time_s() - t_all;
    load_wait_finished(&l, ROLLING_MIN_REQUESTS, 120);
    load_join(&l);
    const load_summary s = load_summarize(&l);
    CHECKF(s.requests >= ROLLING_MIN_REQUESTS, "rolling: only %d requests ran", s.requests);
    CHECKF(s.first_failures == 0 && s.ok == s.requests, "rolling: %d of %d requests failed", s.first_failures,
           s.requests);
    for (int i = 0; i < s.requests && s.first_failures; i++) {
        const req_rec *r = &l.recs[i];
        if (r->status[0] != 200)
            fprintf(stderr, "  rolling: request %d: %ld from %s\n", i, r->status[0], r->server[0]);
    }
    long retried = 0;
    for (int i = 0; i < N_INST; i++) {
        const long e5 = stat_long(c, c->inst[i].name, "hrsp_5xx"), eresp = stat_long(c, c->inst[i].name, "eresp");
        CHECKF(e5 == 0 && eresp == 0, "rolling: HAProxy saw %ld 5xx and %ld response errors from %s", e5, eresp,
               c->inst[i].name);
        retried += stat_long(c, c->inst[i].name, "wretr") + stat_long(c, c->inst[i].name, "wredis");
    }
    // requests an instance took after its SIGTERM (during its grace) and answered before it exited
    int in_grace[N_INST] = {0};
    for (int i = 0; i < s.requests; i++)
        for (int k = 0; k < N_INST; k++)
            in_grace[k] += l.recs[i].status[0] == 200 && !strcmp(l.recs[i].server[0], c->inst[k].name) &&
                           l.recs[i].t_start[0] > t_term[k] && l.recs[i].t_start[0] < t_gone[k];
    printf("  rolling: 3 restarts in %.1f s under a load of %d in flight: %d requests, %d failed; new requests "
           "served during the grace: am1 %d, am2 %d, am3 %d; HAProxy retries/redispatches so far: %ld\n",
           t_roll, CONCURRENCY, s.requests, s.requests - s.ok, in_grace[0], in_grace[1], in_grace[2], retried);
    free(l.recs);
}

// SIGKILL one instance under load with client retries: only its in-flight requests fail, all succeed on retry.
static void case_loss(cluster *c) {
    instance *victim = &c->inst[VICTIM];
    long ok0[N_INST], err0[N_INST];
    for (int i = 0; i < N_INST; i++) CHECK(instance_counts(&c->inst[i], &ok0[i], &err0[i]) == 0);
    long h5_0[N_INST];
    for (int i = 0; i < N_INST; i++) h5_0[i] = stat_long(c, c->inst[i].name, "hrsp_5xx");
    load l;
    if (load_start(&l, c, LOSS_REQUESTS, LOSS_RETRIES, 240)) {
        CHECKF(0, "loss: cannot start the load");
        return;
    }
    // kill it just as a request starts decoding there (its /ready "active_windows" rose between two
    // polls): that request was fully uploaded through HAProxy (which no longer holds it and cannot
    // replay it) and has a whole window to decode (batched requests finish together, so a request
    // merely "busy" there could end the next moment)
    load_wait_finished(&l, 8, 60);
    ready_info ri = instance_ready(victim);
    for (int k = 0; k < 10000 && atomic_load(&l.started) < LOSS_REQUESTS; k++) {
        const int before = ri.active_windows;
        ri = instance_ready(victim);
        if (before >= 0 && ri.active_windows > before) break;
        usleep(2 * 1000);
    }
    const int pending = ri.pending, decoding = ri.active_windows;
    const double t_kill = am_time_s();
    kill(victim->pid, SIGKILL);
    waitpid(victim->pid, NULL, 0); // its listening socket is closed now
    const double t_gone = am_time_s();
    victim->pid = 0;
    const double t_detect = wait_status(c, victim->name, "DOWN", 0, 30);
    CHECKF(t_detect >= 0, "loss: HAProxy never marked %s DOWN", victim->name);
    load_wait_finished(&l, LOSS_REQUESTS, 240);
    load_join(&l);
    const load_summary s = load_summarize(&l);
    CHECKF(s.requests == LOSS_REQUESTS, "loss: %d of %d requests ran", s.requests, LOSS_REQUESTS);
    CHECKF(s.final_failures == 0 && s.ok == LOSS_REQUESTS, "loss: %d requests failed even after %d retries (lost)",
           s.final_failures, LOSS_RETRIES);
    CHECKF(s.first_failures >= 1, "loss: the kill (%d requests admitted there, %d decoding) failed no request",
           pending, decoding);
    // every failed attempt: on the victim, started before it was gone (in flight there: admitted, being
    // uploaded, or connected while the killed process was still being torn down)
    long served[N_INST] = {0};
    int bad = 0;
    for (int i = 0; i < s.requests; i++) {
        const req_rec *r = &l.recs[i];
        for (int a = 0; a < r->attempts; a++) {
            if (r->status[a] == 200) {
                for (int k = 0; k < N_INST; k++) served[k] += !strcmp(r->server[a], c->inst[k].name);
                continue;
            }
            const int on_victim = !strcmp(r->server[a], victim->name);
            if (!on_victim || r->t_start[a] > t_gone) {
                bad++;
                fprintf(stderr, "  loss: request %d attempt %d: %ld from '%s', started %.3f s after the kill\n", i,
                        a + 1, r->status[a], r->server[a], r->t_start[a] - t_kill);
            }
        }
    }
    CHECKF(bad == 0, "loss: %d failed attempts were not requests in flight on %s at the kill", bad, victim->name);
    // the others never answered an error, and served exactly what the client saw from them
    for (int i = 0; i < N_INST; i++) {
        if (i == VICTIM) continue;
        long ok, err;
        CHECK(instance_counts(&c->inst[i], &ok, &err) == 0);
        CHECKF(err == err0[i], "loss: %s answered %ld 5xx", c->inst[i].name, err - err0[i]);
        CHECKF(ok - ok0[i] == served[i], "loss: %s counted %ld transcriptions, the client got %ld from it",
               c->inst[i].name, ok - ok0[i], served[i]);
        const long h5 = stat_long(c, c->inst[i].name, "hrsp_5xx");
        CHECKF(h5 == h5_0[i], "loss: HAProxy saw %ld 5xx from %s", h5 - h5_0[i], c->inst[i].name);
    }
    printf("  loss: %d requests (%d in flight, %d retries allowed); SIGKILL of %s with %d admitted there (%d "
           "decoding): %d failed "
           "at the first attempt (502 from HAProxy), %d after retry (%d retries); process gone %.3f s and marked "
           "DOWN by HAProxy %.2f s after the kill; served am1 %ld, am2 %ld, am3 %ld\n",
           s.requests, CONCURRENCY, LOSS_RETRIES, victim->name, pending, decoding, s.first_failures, s.final_failures,
           s.retries, t_gone - t_kill, t_detect + (t_gone - t_kill), served[0], served[1], served[2]);
    free(l.recs);
}

// One instance, no balancer, --drain-grace: after SIGTERM /ready says 503 at once, a new request is
// still served; once none has come for the grace, the drain begins, new requests are refused, exit 0.
static void case_grace(const cluster *c) {
    instance g = {0};
    if (instance_start(c, &g, "grace", 0, GRACE_ALONE)) {
        CHECKF(0, "grace: the instance did not start");
        return;
    }
    kill(g.pid, SIGTERM);
    long ready = 0;
    for (int k = 0; k < 500 && ready != 503; k++) {
        ready = instance_ready(&g).status;
        if (ready != 503) usleep(10 * 1000);
    }
    CHECKF(ready == 503, "grace: /ready answered %ld after SIGTERM", ready);
    const char *fields[] = {"temperature_inc", "0", NULL};
    http_upload u;
    http_upload_init(&u, g.port, "/v1/audio/transcriptions", c->audio, c->audio_len, "jfk.wav", fields);
    if (curl_easy_perform(u.h) == CURLE_OK) curl_easy_getinfo(u.h, CURLINFO_RESPONSE_CODE, &u.status);
    CHECKF(u.status == 200, "grace: a request during the grace got %ld (%.200s)", u.status,
           u.body.data ? u.body.data : "");
    http_upload_free(&u);
    int over = 0;
    for (int k = 0; k < 600 && !over; k++) { // the grace ends GRACE_ALONE s after that request
        char *log = am_test_read_file(g.log, NULL);
        over = log && strstr(log, "grace over");
        free(log);
        if (!over) usleep(100 * 1000);
    }
    CHECKF(over, "grace: the grace never ended");
    http_upload_init(&u, g.port, "/v1/audio/transcriptions", c->audio, c->audio_len, "jfk.wav", fields);
    if (curl_easy_perform(u.h) == CURLE_OK) curl_easy_getinfo(u.h, CURLINFO_RESPONSE_CODE, &u.status);
    CHECKF(u.status == 503 || u.status == 0, "grace: a request after the grace got %ld", u.status); // 0: exited
    http_upload_free(&u);
    const int st = wait_exit(g.pid, 60);
    CHECKF(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "grace: exit status %d", st);
    if (st == -1) {
        kill(g.pid, SIGKILL);
        waitpid(g.pid, NULL, 0);
    }
    char *log = am_test_read_file(g.log, NULL);
    const char *served = log ? strstr(log, "POST /v1/audio/transcriptions 200") : NULL;
    const char *ended = log ? strstr(log, "grace over") : NULL;
    CHECKF(served && ended && served < ended, "grace: the request was not served before the grace ended");
    if (ended) printf("  grace: /ready 503 on SIGTERM, a new request still served, then %.*s\n",
                      (int)strcspn(ended, "\n"), ended);
    free(log);
    if (!getenv("AM_KEEP_LOGS") && am_test_failures == 0) unlink(g.log);
}

static void dump_tail(const char *path, const char *what) {
    char *text = am_test_read_file(path, NULL);
    if (!text) return;
    const size_t n = strlen(text);
    fprintf(stderr, "---- %s (%s, last 3000 bytes) ----\n%s\n---- end ----\n", what, path,
            text + (n > 3000 ? n - 3000 : 0));
    free(text);
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    cluster c;
    memset(&c, 0, sizeof c);
    if (!am_test_find("fixtures/ggml-test-tiny.en.bin", c.model, sizeof c.model) ||
        !am_test_find("audio/jfk.wav", c.wav, sizeof c.wav) || !am_test_exists(AM_BINARY_DIR "/amanuensis") ||
        !(c.audio = am_test_read_file(c.wav, &c.audio_len))) {
        SKIP_CASE("e2e_scale", "fixture model, jfk.wav or the amanuensis binary missing");
        return am_test_finish("e2e_scale", 0);
    }
    snprintf(c.dir, sizeof c.dir, "/tmp/am_scale_XXXXXX");
    if (!mkdtemp(c.dir)) {
        SKIP_CASE("e2e_scale", "cannot create a temp dir: %s", strerror(errno));
        free(c.audio);
        return am_test_finish("e2e_scale", 0);
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const double t0 = am_time_s();
    case_grace(&c); // needs no balancer
    fflush(stdout);
    if (!find_haproxy(c.haproxy, sizeof c.haproxy)) {
        SKIP_CASE("e2e_scale", "haproxy is not installed (scripts/install-deps.sh installs it)");
        if (!getenv("AM_KEEP_LOGS") && !am_test_failures) rmdir(c.dir);
        curl_global_cleanup();
        free(c.audio);
        return am_test_finish("e2e_scale", 0); // skipped (77), or failed by case_grace
    }
    const double t1 = am_time_s();
    const int have_bench = am_test_exists(AM_BINARY_DIR "/bench_load");
    const int failures0 = am_test_failures;
    int started = 1;
    for (int i = 0; i < N_INST && started; i++) {
        char name[16];
        snprintf(name, sizeof name, "am%d", i + 1);
        started = instance_start(&c, &c.inst[i], name, 0, DRAIN_GRACE) == 0;
    }
    CHECKF(started, "the instances did not start");
    if (started) {
        started = haproxy_start(&c) == 0;
        CHECKF(started, "HAProxy did not start or never saw the instances UP");
    }
    if (started) {
        printf("  HAProxy %s on 127.0.0.1:%d (deploy/haproxy.cfg), instances on ports %d %d %d, up in %.1f s\n",
               c.haproxy, c.port, c.inst[0].port, c.inst[1].port, c.inst[2].port, am_time_s() - t1);
        fflush(stdout);
        if (have_bench) {
            case_bench_retries(&c);
            case_spread(&c);
        } else SKIP_CASE("spread", "%s/bench_load not built", AM_BINARY_DIR);
        fflush(stdout);
        case_rolling(&c);
        fflush(stdout);
        case_loss(&c);
    }
    for (int i = 0; i < N_INST; i++) stop_pid(&c.inst[i].pid, 40);
    stop_pid(&c.haproxy_pid, 10);
    const int failed = am_test_failures > failures0;
    if (failed) {
        for (int i = 0; i < N_INST; i++)
            if (c.inst[i].log[0]) dump_tail(c.inst[i].log, c.inst[i].name);
        dump_tail(c.haproxy_log, "haproxy");
    }
    if (getenv("AM_KEEP_LOGS") || failed) printf("  logs kept in %s\n", c.dir);
    else {
        for (int i = 0; i < N_INST; i++)
            if (c.inst[i].log[0]) unlink(c.inst[i].log);
        char p[320];
        snprintf(p, sizeof p, "%s/bench_load.out", c.dir);
        unlink(p);
        unlink(c.haproxy_log);
        unlink(c.socket);
        rmdir(c.dir);
    }
    printf("e2e_scale: %.1f s\n", am_time_s() - t0);
    curl_global_cleanup();
    free(c.audio);
    return am_test_finish("e2e_scale", 1);
}
