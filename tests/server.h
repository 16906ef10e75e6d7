// server.h — start the real `amanuensis serve` on loopback for end-to-end
// tests, and small libcurl helpers to talk to it (header-only).
#ifndef AM_TEST_SERVER_H
#define AM_TEST_SERVER_H

#include <curl/curl.h>
#include <dirent.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "am_common.h"
#include "am_test.h"

#ifndef AM_BINARY_DIR
#define AM_BINARY_DIR "."
#endif

typedef struct {
    pid_t pid;
    int port;
    char log[256]; // the server's stderr
} test_server;

// Start `amanuensis serve -m MODEL --port 0 ARGS...`; waits for its
// "listening on" line. Returns 0, or -1 (server exited / no line in 60 s).
static inline int server_start(test_server *s, const char *model, const char *const *args) {
    memset(s, 0, sizeof *s);
    snprintf(s->log, sizeof s->log, "/tmp/am_e2e_%d_%ld.log", (int)getpid(), (long)random());
    const char *argv[48] = {AM_BINARY_DIR "/amanuensis", "serve", "-m", model, "--port", "0"};
    int n = 6;
#ifdef AM_TEST_SANITIZED // an instrumented server is several times slower; a test's own --timeout comes later and wins
    argv[n++] = "--timeout";
    argv[n++] = "3600";
#endif
    for (int i = 0; args && args[i] && n < 46; i++) argv[n++] = args[i];
    argv[n] = NULL;
    s->pid = fork();
    if (s->pid == 0) {
        FILE *f = freopen(s->log, "w", stderr);
        (void)f;
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    if (s->pid < 0) return -1;
    for (int i = 0; i < 600; i++) {
        usleep(100 * 1000);
        char *text = am_test_read_file(s->log, NULL);
        const char *at = text ? strstr(text, "listening on http://") : NULL;
        if (at) {
            const char *colon = strrchr(strtok((char *)at, "\n"), ':');
            s->port = colon ? atoi(colon + 1) : 0;
        }
        free(text);
        if (s->port > 0) return 0;
        int status;
        if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
            s->pid = 0;
            return -1;
        }
    }
    return -1;
}

// Send `sig` and wait for the exit status (-1 if it did not exit in 60 s).
static inline int server_stop(test_server *s, int sig) {
    int status = -1;
    if (s->pid > 0) {
        kill(s->pid, sig);
        for (int i = 0; i < 600; i++) {
            if (waitpid(s->pid, &status, WNOHANG) == s->pid) break;
            usleep(100 * 1000);
            status = -1;
        }
        if (status == -1) {
            kill(s->pid, SIGKILL);
            waitpid(s->pid, NULL, 0);
        }
    }
    s->pid = 0;
    if (!getenv("AM_KEEP_LOGS")) unlink(s->log);
    return status;
}

// The number of open files of process pid (its /proc/PID/fd entries); -1 when unreadable.
static inline int test_fd_count(pid_t pid) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
    DIR *d = opendir(path);
    if (!d) return -1;
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

// The resident set size of process pid in kB (VmRSS of /proc/PID/status); -1 when unreadable.
static inline long test_rss_kb(pid_t pid) {
    char path[64], t[4096];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r"); // /proc files have no size: read, do not seek
    const size_t n = f ? fread(t, 1, sizeof t - 1, f) : 0;
    if (f) fclose(f);
    t[n] = 0;
    const char *v = strstr(t, "VmRSS:");
    return v ? atol(v + 6) : -1;
}

// A growable response body.
typedef struct {
    char *data;
    size_t len;
} http_body;

static inline size_t http_body_write(char *p, size_t size, size_t n, void *user) {
    http_body *b = user;
    char *v = realloc(b->data, b->len + size * n + 1);
    if (!v) return 0;
    memcpy(v + b->len, p, size * n);
    b->data = v;
    b->len += size * n;
    b->data[b->len] = 0;
    return size * n;
}

// GET http://127.0.0.1:PORT/path; returns the status (0 on transport error), body in *out (free it).
static inline long http_get(int port, const char *path, char **out) {
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    CURL *h = curl_easy_init();
    http_body b = {0};
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, http_body_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 60L);
    long code = 0;
    if (curl_easy_perform(h) == CURLE_OK) curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_cleanup(h);
    if (out) *out = b.data ? b.data : calloc(1, 1);
    else free(b.data);
    return code;
}

// A transcription upload as the openai SDK sends it (multipart: file, model,
// response_format, extra name=value fields), for curl easy or multi use.
typedef struct {
    CURL *h;
    curl_mime *mime;
    http_body body;
    long status;
} http_upload;

// Add the part "file" (size bytes, sent as filename) to mime; returns the part.
static inline curl_mimepart *http_mime_file(curl_mime *mime, const void *file, size_t size, const char *filename) {
    curl_mimepart *part = curl_mime_addpart(mime);
    curl_mime_name(part, "file");
    curl_mime_data(part, file, size);
    curl_mime_filename(part, filename);
    return part;
}

// Add a part per name, value pair of fields (NULL-terminated; NULL: none) to mime.
static inline void http_mime_fields(curl_mime *mime, const char *const *fields) {
    for (int i = 0; fields && fields[i] && fields[i + 1]; i += 2) {
        curl_mimepart *part = curl_mime_addpart(mime);
        curl_mime_name(part, fields[i]);
        curl_mime_data(part, fields[i + 1], CURL_ZERO_TERMINATED);
    }
}

static inline void http_upload_init(http_upload *u, int port, const char *endpoint, const void *file, size_t size,
                                    const char *filename, const char *const *fields) {
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, endpoint);
    memset(u, 0, sizeof *u);
    u->h = curl_easy_init();
    u->mime = curl_mime_init(u->h);
    curl_mime_type(http_mime_file(u->mime, file, size, filename), "application/octet-stream");
    static const char *const model[] = {"model", "whisper-1", NULL};
    http_mime_fields(u->mime, model);
    http_mime_fields(u->mime, fields);
    curl_easy_setopt(u->h, CURLOPT_URL, url);
    curl_easy_setopt(u->h, CURLOPT_MIMEPOST, u->mime);
    curl_easy_setopt(u->h, CURLOPT_WRITEFUNCTION, http_body_write);
    curl_easy_setopt(u->h, CURLOPT_WRITEDATA, &u->body);
    curl_easy_setopt(u->h, CURLOPT_TIMEOUT, 300L);
}

static inline void http_upload_free(http_upload *u) {
    curl_mime_free(u->mime);
    curl_easy_cleanup(u->h);
    free(u->body.data);
    memset(u, 0, sizeof *u);
}

// Run uploads concurrently (all in flight at once); fills each status.
static inline void http_run_all(http_upload *u, int n) {
    CURLM *m = curl_multi_init();
    for (int i = 0; i < n; i++) curl_multi_add_handle(m, u[i].h);
    int running = 1;
    while (running) {
        curl_multi_perform(m, &running);
        if (running) curl_multi_poll(m, NULL, 0, 100, NULL);
    }
    for (int i = 0; i < n; i++) {
        curl_easy_getinfo(u[i].h, CURLINFO_RESPONSE_CODE, &u[i].status);
        curl_multi_remove_handle(m, u[i].h);
    }
    curl_multi_cleanup(m);
}

#endif // AM_TEST_SERVER_H
