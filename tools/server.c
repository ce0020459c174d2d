/* deepseek-server - an OpenAI-compatible HTTP server over one loaded model.

     deepseek-server -m FILE [--host 127.0.0.1] [--port 8080] [-c N] [-np SLOTS] [-t N]
                     [--api-key K] [--cache-dir DIR] [--cache-size MB] [--chat-template NAME]

   POST /v1/chat/completions and /v1/completions (streamed as server-sent events or not),
   GET /v1/models, /health, /metrics (Prometheus text) and / (a chat page). HTTP is
   libmicrohttpd's (a thread per connection), JSON is cJSON's.

   One engine thread owns the model's contexts, one per slot (-np): it takes the queued requests
   into free slots and runs every busy slot a step at a time in turn (a prompt chunk or one
   token), so the slots share the cores without sharing a context. A slot keeps its cache after a
   request; a new prompt goes to the free slot whose cached tokens share its longest prefix and
   evaluates only the rest (usage.prompt_tokens_details.cached_tokens). With --cache-dir each
   evaluated prompt's cache is also written to a file (the latent rows, ds_context_state_get),
   atomically (a temporary name, fsync, rename), and mapped back for a later prompt that starts
   with it, also after a restart; the files are dropped least recently used first past
   --cache-size. A request whose client goes away is cancelled at the next step. */
#include "deepseek.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "args.h"
#include "clock.h"
#include "server_page.h" /* SERVER_PAGE, SERVER_PAGE_LEN: tools/server/index.html */
#include "server_text.h"

#define PROG "deepseek-server"

/* ---- options ---- */

typedef struct {
    const char *model, *host, *api_key, *cache_dir, *chat_template;
    int port, n_ctx, n_slots, n_threads, n_batch, queue, cache_mb, cache_type, verbose;
    long max_body;
} server_opts;

static void usage(FILE *fp) {
    fprintf(fp, "usage: " PROG " -m FILE [options]\n"
                "\n"
                "An OpenAI-compatible server: POST /v1/chat/completions, /v1/completions; GET /v1/models,\n"
                "/health, /metrics and / (a chat page).\n"
                "\n"
                "  -m, --model FILE       the GGUF model\n"
                "  --host ADDR            address to listen on (default 127.0.0.1)\n"
                "  --port N               port (default 8080; 0: any free one, printed when listening)\n"
                "  -c, --ctx-size N       positions per slot (default: the model's, at most 4096)\n"
                "  -np, --parallel N      slots: requests served at once (default 1)\n"
                "  -t, --threads N        threads (default: the physical cores)\n"
                "  -b, --batch-size N     prompt tokens evaluated together (default 512)\n"
                "  -ctk, -ctv TYPE        latent cache rows: f32 (default), f16, bf16, q8_0\n"
                "  --queue N              requests waiting for a slot before 503 (default 16)\n"
                "  --api-key K            require 'Authorization: Bearer K' on /v1/*\n"
                "  --cache-dir DIR        keep evaluated prompts' caches in DIR, across restarts\n"
                "  --cache-size MB        most megabytes DIR may hold (default 1024)\n"
                "  --max-body BYTES       largest request body (default 8388608; larger: 413)\n"
                "  --chat-template NAME   render chats in this format, not the model's (list: see deepseek)\n"
                "  -v, --verbose          log each request on stderr\n"
                "  -h, --help, --version\n");
}

static int parse_args(int argc, char **argv, server_opts *o) {
    *o = (server_opts){.host = "127.0.0.1", .port = 8080, .n_slots = 1, .queue = 16, .cache_mb = 1024,
                       .max_body = 8L << 20};
    args_it it = args_begin(PROG, argc, argv);
    for (const char *a; (a = args_next(&it));) {
        if (args_help_version(&it, a, usage, 1)) continue;
        if (args_is(a, "-m|--model")) o->model = args_value(&it);
        else if (args_is(a, "--host")) o->host = args_value(&it);
        else if (args_is(a, "--port")) args_value_int(&it, 0, 65535, &o->port);
        else if (args_is(a, "-c|--ctx-size")) args_value_int(&it, 0, 1 << 24, &o->n_ctx);
        else if (args_is(a, "-np|--parallel")) args_value_int(&it, 1, 256, &o->n_slots);
        else if (args_is(a, "-t|--threads")) args_value_int(&it, 1, 1024, &o->n_threads);
        else if (args_is(a, "--queue")) args_value_int(&it, 0, 1 << 20, &o->queue);
        else if (args_is(a, "--api-key")) o->api_key = args_value(&it);
        else if (args_is(a, "--cache-dir")) o->cache_dir = args_value(&it);
        else if (args_is(a, "--cache-size")) args_value_int(&it, 1, 1 << 30, &o->cache_mb);
        else if (args_is(a, "--max-body")) {
            int v = 0;
            if (!args_value_int(&it, 1024, 1 << 30, &v)) o->max_body = v;
        } else if (args_is(a, "--chat-template")) o->chat_template = args_value(&it);
        else if (args_is(a, "-v|--verbose")) o->verbose = 1;
        else if (!args_model_opt(&it, a, &o->n_batch, &o->cache_type, NULL)) args_unknown(&it);
    }
    if (!it.failed && !o->model) args_none_given(&it, "model", "-m FILE");
    return it.failed ? -1 : 0;
}

/* ---- requests ---- */

/* One request from its parse to its last byte. The connection's thread and the engine hold it
   (refs); the engine writes the answer into out (SSE events, or the JSON at the end) and
   signals; the connection's thread sends it. */
typedef struct job {
    /* what to do */
    int chat, stream, include_usage, in_think, max_tokens, ignore_eos;
    tool_syntax tools;
    int32_t *prompt;
    int n_prompt;
    char **stop;
    int n_stop;
    ds_sampler_params sp;
    char id[40];
    long created;
    /* the connection: polled for a hang-up while fd_ok */
    int fd, fd_ok;
    /* results (engine) */
    char *text;
    size_t n_text, cap_text, sent_r, sent_c; /* generated text; reasoning / answer bytes already streamed */
    int n_gen, n_cached, started;
    const char *finish;
    double t_queued, t_start, t_prompt, t_end;
    /* output, under mu */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char *out;
    size_t n_out, cap_out, n_sent;
    int done, cancelled, refs;
    struct job *next;
} job;

static void job_unref(job *j) {
    pthread_mutex_lock(&j->mu);
    int left = --j->refs;
    pthread_mutex_unlock(&j->mu);
    if (left) return;
    for (int i = 0; i < j->n_stop; i++) free(j->stop[i]);
    free(j->stop);
    free(j->prompt);
    free(j->text);
    free(j->out);
    pthread_mutex_destroy(&j->mu);
    pthread_cond_destroy(&j->cv);
    free(j);
}

/* Appends n bytes to a growing buffer; -1 when out of memory. */
static int buf_put(char **b, size_t *len, size_t *cap, const char *s, size_t n) {
    if (*len + n + 1 > *cap) {
        size_t c = (*len + n + 1) * 2;
        char *p = realloc(*b, c);
        if (!p) return -1;
        *b = p, *cap = c;
    }
    memcpy(*b + *len, s, n);
    *len += n;
    (*b)[*len] = 0;
    return 0;
}

/* Hands bytes to the connection (the caller holds no lock). */
static void job_emit(job *j, const char *s, size_t n) {
    pthread_mutex_lock(&j->mu);
    buf_put(&j->out, &j->n_out, &j->cap_out, s, n);
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
}

static void job_emit_json(job *j, cJSON *o, int sse) {
    char *s = cJSON_PrintUnformatted(o);
    if (!s) return;
    if (sse) job_emit(j, "data: ", 6);
    job_emit(j, s, strlen(s));
    if (sse) job_emit(j, "\n\n", 2);
    free(s);
}

/* ---- the server's state ---- */

typedef struct {
    ds_context *ctx;
    int32_t *tokens; /* what the cache holds, position by position */
    int n_tokens;
    job *job;        /* NULL: free */
    ds_sampler *smp;
    ds_detok *detok;
    int n_done;      /* prompt tokens evaluated so far */
    double last_used;
} slot;

typedef struct {
    char name[64];
    int32_t *tokens;
    int n_tokens;
    off_t bytes;
    double used;
} disk_entry;

typedef struct {
    server_opts o;
    ds_model *m;
    const char *model_id;
    ds_chat_style style;
    uint64_t model_key; /* disk cache files name the model they are of */
    slot *slots;
    slot **ready;       /* the slots decoding in this round, */
    int32_t *ready_tok; /* their tokens, */
    ds_context **batch; /* and their contexts, for ds_eval_seqs */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    job *queue_head, *queue_tail;
    int n_queued, quit;
    disk_entry *disk; /* the engine's (and the loader's, before it starts) */
    int n_disk;
    atomic_int disk_entries; /* n_disk, for /metrics */
    /* metrics, under mu */
    unsigned long long n_requests, n_prompt_tokens, n_predicted, n_cache_hit_tokens, n_disk_hits, n_errors;
    unsigned long long n_batches, n_batch_rows; /* decode passes over several slots, and their rows */
    double s_prompt, s_predicted;
} server;

static server S;

/* ---- the prefix cache on disk ---- */

typedef struct {
    char magic[4]; /* "DSPC" */
    uint32_t version, n_tokens, pad;
    uint64_t model_key, state_bytes;
} disk_header;

static uint64_t fnv1a(uint64_t h, const void *p, size_t n) {
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

static void disk_path(char *out, size_t cap, const char *name) { snprintf(out, cap, "%s/%s", S.o.cache_dir, name); }

static int disk_read_header(const char *path, disk_header *h, int32_t **tokens) {
    FILE *fp = fopen(path, "rb");
    int ok = fp && fread(h, sizeof *h, 1, fp) == 1 && !memcmp(h->magic, "DSPC", 4) && h->version == 1 &&
             h->model_key == S.model_key && h->n_tokens > 0 && h->n_tokens <= (1u << 24);
    *tokens = ok ? malloc((size_t)h->n_tokens * sizeof **tokens) : NULL;
    ok = ok && *tokens && fread(*tokens, sizeof **tokens, h->n_tokens, fp) == h->n_tokens;
    if (fp) fclose(fp);
    if (!ok) free(*tokens), *tokens = NULL;
    return ok ? 0 : -1;
}

/* Reads the directory's entries of this model; removes temporary files a crash left. */
static void disk_scan(void) {
    DIR *d = opendir(S.o.cache_dir);
    for (struct dirent *e; d && (e = readdir(d));) {
        char path[4096];
        disk_path(path, sizeof path, e->d_name);
        if (!strncmp(e->d_name, ".tmp-", 5)) {
            unlink(path);
            continue;
        }
        size_t n = strlen(e->d_name);
        struct stat st;
        disk_header h;
        int32_t *tok;
        if (n < 6 || n >= sizeof S.disk[0].name || strcmp(e->d_name + n - 5, ".dskv") || stat(path, &st) ||
            disk_read_header(path, &h, &tok))
            continue;
        disk_entry *p = realloc(S.disk, (size_t)(S.n_disk + 1) * sizeof *p);
        if (!p) {
            free(tok);
            break;
        }
        S.disk = p;
        disk_entry *de = &S.disk[S.n_disk++];
        atomic_store(&S.disk_entries, S.n_disk);
        snprintf(de->name, sizeof de->name, "%s", e->d_name);
        de->tokens = tok, de->n_tokens = (int)h.n_tokens, de->bytes = st.st_size;
        de->used = (double)st.st_mtim.tv_sec + st.st_mtim.tv_nsec * 1e-9;
    }
    if (d) closedir(d);
}

static int common_prefix(const int32_t *a, int na, const int32_t *b, int nb) {
    int k = 0;
    while (k < na && k < nb && a[k] == b[k]) k++;
    return k;
}

/* The entry sharing the longest prefix with the prompt, and that length. */
static disk_entry *disk_best(const int32_t *p, int n, int *shared) {
    disk_entry *best = NULL;
    *shared = 0;
    for (int i = 0; i < S.n_disk; i++) {
        int k = common_prefix(S.disk[i].tokens, S.disk[i].n_tokens, p, n);
        if (k > *shared) best = &S.disk[i], *shared = k; /* loaded whole, then rewound to k */
    }
    return best;
}

static void disk_drop(int i) {
    char path[4096];
    disk_path(path, sizeof path, S.disk[i].name);
    unlink(path);
    free(S.disk[i].tokens);
    S.disk[i] = S.disk[--S.n_disk];
    atomic_store(&S.disk_entries, S.n_disk);
}

/* Least recently used first, until the files fit in --cache-size. */
static void disk_trim(void) {
    for (;;) {
        off_t total = 0;
        int old = -1;
        for (int i = 0; i < S.n_disk; i++) {
            total += S.disk[i].bytes;
            if (old < 0 || S.disk[i].used < S.disk[old].used) old = i;
        }
        if (old < 0 || total <= (off_t)S.o.cache_mb << 20) return;
        disk_drop(old);
    }
}

static int write_all(int fd, const void *p, size_t n) {
    for (const char *b = p; n;) {
        ssize_t k = write(fd, b, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return -1;
        b += k, n -= (size_t)k;
    }
    return 0;
}

/* Keeps the slot's first n positions (its tokens) in a file. A crash or a full disk leaves at
   most a temporary file, removed at the next start; the entry appears only whole. */
static void disk_save(slot *s, int n) {
    uint64_t key = fnv1a(1469598103934665603ull, s->tokens, (size_t)n * sizeof *s->tokens);
    char name[64], path[4096], tmp[4096];
    snprintf(name, sizeof name, "%016llx.dskv", (unsigned long long)key);
    for (int i = 0; i < S.n_disk; i++)
        if (!strcmp(S.disk[i].name, name)) return; /* kept already */
    size_t sz = ds_context_state_size(s->ctx, n);
    disk_header h = {{'D', 'S', 'P', 'C'}, 1, (uint32_t)n, 0, S.model_key, sz};
    void *state = malloc(sz);
    int32_t *tok = malloc((size_t)n * sizeof *tok);
    disk_path(path, sizeof path, name);
    snprintf(tmp, sizeof tmp, "%s/.tmp-%s", S.o.cache_dir, name);
    int fd = -1, ok = state && tok && !ds_context_state_get(s->ctx, n, state, sz);
    ok = ok && (fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644)) >= 0;
    ok = ok && !write_all(fd, &h, sizeof h) && !write_all(fd, s->tokens, (size_t)n * sizeof *s->tokens) &&
         !write_all(fd, state, sz) && !fsync(fd);
    if (fd >= 0 && close(fd)) ok = 0;
    ok = ok && !rename(tmp, path);
    free(state);
    disk_entry *p = ok ? realloc(S.disk, (size_t)(S.n_disk + 1) * sizeof *p) : NULL;
    if (!p) {
        if (fd >= 0) unlink(tmp);
        if (ok) unlink(path);
        free(tok);
        if (S.o.verbose) fprintf(stderr, PROG ": could not write the prompt cache file %s\n", path);
        return;
    }
    S.disk = p;
    memcpy(tok, s->tokens, (size_t)n * sizeof *tok);
    disk_entry *e = &S.disk[S.n_disk++];
    atomic_store(&S.disk_entries, S.n_disk);
    snprintf(e->name, sizeof e->name, "%s", name);
    e->tokens = tok, e->n_tokens = n, e->bytes = (off_t)(sizeof h + (size_t)n * sizeof *tok + sz), e->used = now_s();
    disk_trim();
}

/* Maps the entry back into the slot's context; 0 on success. */
static int disk_load(slot *s, disk_entry *e) {
    char path[4096];
    disk_path(path, sizeof path, e->name);
    int fd = open(path, O_RDONLY), rc = -1;
    struct stat st;
    if (fd < 0 || fstat(fd, &st)) goto out;
    size_t head = sizeof(disk_header) + (size_t)e->n_tokens * sizeof(int32_t);
    if ((size_t)st.st_size <= head) goto out;
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) goto out;
    int n = 0;
    if (!ds_context_state_set(s->ctx, (const char *)p + head, (size_t)st.st_size - head, &n) && n == e->n_tokens) {
        memcpy(s->tokens, e->tokens, (size_t)n * sizeof *s->tokens);
        s->n_tokens = n;
        rc = 0;
    }
    munmap(p, (size_t)st.st_size);
    e->used = now_s();
    utimensat(AT_FDCWD, path, NULL, 0); /* the last use survives a restart */
out:
    if (fd >= 0) close(fd);
    if (rc) {
        ds_context_reset(s->ctx);
        s->n_tokens = 0;
    }
    return rc;
}

/* ---- the engine ---- */

/* Whether the client hung up (a closed socket reads as end of file). */
static int hung_up(job *j) {
    pthread_mutex_lock(&j->mu);
    int gone = j->cancelled;
    if (!gone && j->fd_ok) {
        struct pollfd p = {j->fd, POLLIN, 0};
        char c;
        if (poll(&p, 1, 0) > 0 && (p.revents & (POLLHUP | POLLERR) ||
                                   ((p.revents & POLLIN) && recv(j->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) == 0)))
            gone = j->cancelled = 1;
    }
    pthread_mutex_unlock(&j->mu);
    return gone;
}

/* Where another slot (busy or not) holds a longer prefix of the prompt than this one's k
   tokens, its rows are copied over; the prefix this slot now holds. */
static int slot_borrow(slot *s, const job *j, int k) {
    slot *from = NULL;
    int best = k;
    for (int i = 0; i < S.o.n_slots; i++) {
        slot *o = &S.slots[i];
        int c = o == s ? 0 : common_prefix(o->tokens, o->n_tokens, j->prompt, j->n_prompt);
        if (c > best) from = o, best = c;
    }
    if (!from || best < k + 16) return k; /* a short gain is not worth the copy */
    size_t sz = ds_context_state_size(from->ctx, best);
    void *buf = malloc(sz);
    if (buf && !ds_context_state_get(from->ctx, best, buf, sz) && !ds_context_state_set(s->ctx, buf, sz, NULL)) {
        memcpy(s->tokens, from->tokens, (size_t)best * sizeof *s->tokens);
        s->n_tokens = k = best;
    }
    free(buf);
    return k;
}

/* Puts the slot's cache to the longest prefix that it, another slot or the disk shares with the
   prompt. */
static void slot_prepare(slot *s, job *j) {
    int k = slot_borrow(s, j, common_prefix(s->tokens, s->n_tokens, j->prompt, j->n_prompt)), on_disk = 0;
    disk_entry *e = S.o.cache_dir ? disk_best(j->prompt, j->n_prompt, &on_disk) : NULL;
    if (e && on_disk > k && on_disk >= 16 && !disk_load(s, e)) {
        k = on_disk;
        pthread_mutex_lock(&S.mu);
        S.n_disk_hits++;
        pthread_mutex_unlock(&S.mu);
    }
    if (k >= j->n_prompt) k = j->n_prompt - 1; /* the last token is evaluated again for its logits */
    ds_context_rewind(s->ctx, k < ds_context_n_past(s->ctx) ? k : ds_context_n_past(s->ctx));
    s->n_tokens = ds_context_n_past(s->ctx);
    s->n_done = s->n_tokens;
    j->n_cached = s->n_done;
}

/* The free slot whose cache shares the longest prefix with the prompt (the least recently used
   on ties). Called under S.mu. */
static slot *slot_for(const job *j) {
    slot *best = NULL;
    int best_k = -1;
    for (int i = 0; i < S.o.n_slots; i++) {
        slot *s = &S.slots[i];
        if (s->job) continue;
        int k = common_prefix(s->tokens, s->n_tokens, j->prompt, j->n_prompt);
        if (k > best_k || (k == best_k && s->last_used < best->last_used)) best = s, best_k = k;
    }
    return best;
}

static cJSON *usage_json(const job *j) {
    cJSON *u = cJSON_CreateObject(), *d = cJSON_CreateObject();
    cJSON_AddNumberToObject(u, "prompt_tokens", j->n_prompt);
    cJSON_AddNumberToObject(u, "completion_tokens", j->n_gen);
    cJSON_AddNumberToObject(u, "total_tokens", j->n_prompt + j->n_gen);
    cJSON_AddNumberToObject(d, "cached_tokens", j->n_cached);
    cJSON_AddItemToObject(u, "prompt_tokens_details", d);
    cJSON_AddNumberToObject(u, "prompt_cache_hit_tokens", j->n_cached); /* DeepSeek's API names */
    cJSON_AddNumberToObject(u, "prompt_cache_miss_tokens", j->n_prompt - j->n_cached);
    return u;
}

static cJSON *timings_json(const job *j) {
    cJSON *t = cJSON_CreateObject();
    double pm = (j->t_prompt - j->t_start) * 1e3, gm = (j->t_end - j->t_prompt) * 1e3;
    cJSON_AddNumberToObject(t, "prompt_n", j->n_prompt - j->n_cached);
    cJSON_AddNumberToObject(t, "prompt_ms", pm);
    cJSON_AddNumberToObject(t, "prompt_per_second", pm > 0 ? (j->n_prompt - j->n_cached) * 1e3 / pm : 0);
    cJSON_AddNumberToObject(t, "predicted_n", j->n_gen);
    cJSON_AddNumberToObject(t, "predicted_ms", gm);
    cJSON_AddNumberToObject(t, "predicted_per_second", gm > 0 ? j->n_gen * 1e3 / gm : 0);
    cJSON_AddNumberToObject(t, "queued_ms", (j->t_start - j->t_queued) * 1e3);
    return t;
}

/* {"id", "object", "created", "model", "choices": [choice]} */
static cJSON *envelope(const job *j, const char *object, cJSON *choice) {
    cJSON *o = cJSON_CreateObject(), *ch = cJSON_CreateArray();
    cJSON_AddStringToObject(o, "id", j->id);
    cJSON_AddStringToObject(o, "object", object);
    cJSON_AddNumberToObject(o, "created", (double)j->created);
    cJSON_AddStringToObject(o, "model", S.model_id);
    cJSON_AddStringToObject(o, "system_fingerprint", ds_version());
    if (choice) cJSON_AddItemToArray(ch, choice);
    cJSON_AddItemToObject(o, "choices", ch);
    return o;
}

static cJSON *str_n(const char *s, size_t n) {
    char *c = s ? strndup(s, n) : NULL;
    cJSON *j = cJSON_CreateString(c ? c : "");
    free(c);
    return j;
}

/* One streamed chunk: delta {key: text} (key NULL: an empty delta), finish_reason. */
static void stream_chunk(job *j, const char *key, const char *s, size_t n, cJSON *extra, const char *finish) {
    cJSON *c = cJSON_CreateObject();
    cJSON_AddNumberToObject(c, "index", 0);
    if (j->chat) {
        cJSON *d = cJSON_CreateObject();
        if (!j->started) cJSON_AddStringToObject(d, "role", "assistant");
        if (key) cJSON_AddItemToObject(d, key, str_n(s, n));
        if (extra) cJSON_AddItemToObject(d, "tool_calls", extra);
        cJSON_AddItemToObject(c, "delta", d);
    } else {
        cJSON_AddItemToObject(c, "text", str_n(s, key ? n : 0));
        cJSON_AddNullToObject(c, "logprobs");
    }
    if (finish) cJSON_AddStringToObject(c, "finish_reason", finish);
    else cJSON_AddNullToObject(c, "finish_reason");
    j->started = 1;
    cJSON *o = envelope(j, j->chat ? "chat.completion.chunk" : "text_completion", c);
    job_emit_json(j, o, 1);
    cJSON_Delete(o);
}

/* The parts of the first len bytes of the answer: a chat's reasoning, answer and tool calls; a
   text completion's text, all of it. */
static text_parts parts_of(const job *j, size_t len, int final) {
    if (!j->chat) return (text_parts){0, 0, 0, len, len};
    return text_split(j->text, len, j->in_think, j->tools, final);
}

/* Streams what became certain of the reasoning and the answer since the last call. */
static void stream_progress(job *j, size_t len, int final) {
    text_parts p = parts_of(j, len, final);
    if (p.r1 - p.r0 > j->sent_r) {
        stream_chunk(j, "reasoning_content", j->text + p.r0 + j->sent_r, p.r1 - p.r0 - j->sent_r, NULL, NULL);
        j->sent_r = p.r1 - p.r0;
    }
    if (p.c1 > p.c0 && p.c1 - p.c0 > j->sent_c) {
        stream_chunk(j, j->chat ? "content" : "text", j->text + p.c0 + j->sent_c, p.c1 - p.c0 - j->sent_c, NULL,
                     NULL);
        j->sent_c = p.c1 - p.c0;
    }
}

/* The answer's end: the streamed last chunks, or the whole JSON response. */
static void finish_output(job *j) {
    if (!strcmp(j->finish, "error")) { /* nothing whole to send: a 500 (or, streaming, an error event) */
        static const char ev[] = "data: {\"error\":{\"message\":\"generation failed\",\"type\":\"server_error\"}}\n\n"
                                 "data: [DONE]\n\n";
        if (j->stream) job_emit(j, ev, sizeof ev - 1);
        return;
    }
    text_parts p = parts_of(j, j->n_text, 1);
    cJSON *calls = p.tools < j->n_text ? parse_tool_calls(j->tools, j->text + p.tools, j->n_text - p.tools) : NULL;
    if (!calls) p.c1 = j->n_text; /* not well-formed calls stay part of the answer */
    else j->finish = "tool_calls";
    if (j->stream) {
        stream_progress(j, j->n_text, 1);
        if (!calls && p.c1 - p.c0 > j->sent_c)
            stream_chunk(j, "content", j->text + p.c0 + j->sent_c, p.c1 - p.c0 - j->sent_c, NULL, NULL);
        stream_chunk(j, NULL, NULL, 0, calls, j->finish);
        if (j->include_usage) {
            cJSON *o = envelope(j, j->chat ? "chat.completion.chunk" : "text_completion", NULL);
            cJSON_AddItemToObject(o, "usage", usage_json(j));
            cJSON_AddItemToObject(o, "timings", timings_json(j));
            job_emit_json(j, o, 1);
            cJSON_Delete(o);
        }
        job_emit(j, "data: [DONE]\n\n", 14);
        return;
    }
    cJSON *c = cJSON_CreateObject();
    cJSON_AddNumberToObject(c, "index", 0);
    if (j->chat) {
        cJSON *msg = cJSON_CreateObject();
        cJSON_AddStringToObject(msg, "role", "assistant");
        cJSON_AddItemToObject(msg, "content", calls && p.c1 == p.c0 ? cJSON_CreateNull() : str_n(j->text + p.c0, p.c1 - p.c0));
        if (p.r1 > p.r0 || j->in_think) cJSON_AddItemToObject(msg, "reasoning_content", str_n(j->text + p.r0, p.r1 - p.r0));
        if (calls) cJSON_AddItemToObject(msg, "tool_calls", calls);
        cJSON_AddItemToObject(c, "message", msg);
    } else {
        cJSON_AddItemToObject(c, "text", str_n(j->text, j->n_text));
    }
    cJSON_AddNullToObject(c, "logprobs");
    cJSON_AddStringToObject(c, "finish_reason", j->finish);
    cJSON *o = envelope(j, j->chat ? "chat.completion" : "text_completion", c);
    cJSON_AddItemToObject(o, "usage", usage_json(j));
    cJSON_AddItemToObject(o, "timings", timings_json(j));
    job_emit_json(j, o, 0);
    cJSON_Delete(o);
}

/* Ends the slot's request: its answer out, the slot free, the counters counted. */
static void slot_finish(slot *s, const char *finish) {
    job *j = s->job;
    j->finish = finish;
    j->t_end = now_s();
    if (!j->t_prompt) j->t_prompt = j->t_end;
    if (!hung_up(j)) finish_output(j);
    pthread_mutex_lock(&S.mu);
    S.n_prompt_tokens += (unsigned long long)(j->n_prompt - j->n_cached);
    S.n_predicted += (unsigned long long)j->n_gen;
    S.n_cache_hit_tokens += (unsigned long long)j->n_cached;
    S.s_prompt += j->t_prompt - j->t_start;
    S.s_predicted += j->t_end - j->t_prompt;
    s->job = NULL;
    s->last_used = j->t_end;
    pthread_mutex_unlock(&S.mu);
    ds_sampler_free(s->smp), s->smp = NULL;
    ds_detok_free(s->detok), s->detok = NULL;
    if (S.o.verbose)
        fprintf(stderr, PROG ": %s: %d prompt tokens (%d cached), %d generated, %s, %.1f ms\n", j->id, j->n_prompt,
                j->n_cached, j->n_gen, finish, (j->t_end - j->t_queued) * 1e3);
    pthread_mutex_lock(&j->mu);
    j->done = 1;
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
    job_unref(j);
}

static int slot_eval(slot *s, const int32_t *t, int n) {
    if (ds_eval(s->ctx, t, n, 0)) return -1;
    memcpy(s->tokens + s->n_tokens, t, (size_t)n * sizeof *t);
    s->n_tokens += n;
    return 0;
}

/* The next chunk of the prompt. */
static void step_prompt(slot *s) {
    job *j = s->job;
    int n = j->n_prompt - s->n_done, b = S.o.n_batch ? S.o.n_batch : 512;
    if (n > b) n = b;
    if (slot_eval(s, j->prompt + s->n_done, n)) {
        slot_finish(s, "error");
        return;
    }
    for (int i = s->n_done; i < s->n_done + n; i++) ds_sampler_accept(s->smp, j->prompt[i]);
    s->n_done += n;
    if (s->n_done < j->n_prompt) return;
    j->t_prompt = now_s();
    if (S.o.cache_dir && j->n_prompt - j->n_cached >= 16) disk_save(s, j->n_prompt);
}

/* The slot's next token: sampled, checked against the ends, streamed. 1 when the request goes
   on and the token is to be evaluated; 0 when it has ended. */
static int step_sample(slot *s, int32_t *out) {
    job *j = s->job;
    int32_t tok = ds_sampler_sample(s->smp, ds_logits(s->ctx, 0));
    if (ds_token_is_eog(S.m, tok) && !j->ignore_eos) {
        slot_finish(s, "stop");
        return 0;
    }
    ds_sampler_accept(s->smp, tok);
    j->n_gen++;
    size_t n, from = j->n_text;
    const char *piece = ds_detok_push(s->detok, tok, &n);
    buf_put(&j->text, &j->n_text, &j->cap_text, piece, n);
    size_t cut = stop_at(j->text, from, j->n_text, j->stop, j->n_stop);
    if (cut < j->n_text) {
        j->text[j->n_text = cut] = 0;
        slot_finish(s, "stop");
        return 0;
    }
    if (j->stream) stream_progress(j, j->n_text - stop_partial(j->text, j->n_text, j->stop, j->n_stop), 0);
    if (j->n_gen >= j->max_tokens || ds_context_n_past(s->ctx) >= ds_context_n_ctx(s->ctx)) {
        const char *rest = ds_detok_flush(s->detok, &n);
        buf_put(&j->text, &j->n_text, &j->cap_text, rest, n);
        slot_finish(s, "length");
        return 0;
    }
    *out = tok;
    return 1;
}

/* The sampled tokens of n slots through the model in one pass (ds_eval_seqs): the weights,
   the routed experts' included, are read once for all the slots decoding now. */
static void step_decode(slot **ready, const int32_t *tok, int n) {
    if (n == 1) {
        if (slot_eval(ready[0], tok, 1)) slot_finish(ready[0], "error");
        return;
    }
    for (int i = 0; i < n; i++) S.batch[i] = ready[i]->ctx;
    if (ds_eval_seqs(S.batch, tok, n)) {
        if (S.o.verbose) fprintf(stderr, PROG ": a batch of %d slots failed: %s\n", n, ds_context_error(S.batch[0]));
        for (int i = 0; i < n; i++) slot_finish(ready[i], "error");
        return;
    }
    for (int i = 0; i < n; i++) ready[i]->tokens[ready[i]->n_tokens++] = tok[i];
    pthread_mutex_lock(&S.mu);
    S.n_batches++;
    S.n_batch_rows += (unsigned long long)n;
    pthread_mutex_unlock(&S.mu);
}

/* Moves queued requests into free slots. Called under S.mu; returns the number of busy slots. */
static int assign(void) {
    while (S.queue_head) {
        slot *s = slot_for(S.queue_head);
        if (!s) break;
        job *j = S.queue_head;
        S.queue_head = j->next;
        if (!S.queue_head) S.queue_tail = NULL;
        S.n_queued--;
        s->job = j;
    }
    int busy = 0;
    for (int i = 0; i < S.o.n_slots; i++) busy += S.slots[i].job != NULL;
    return busy;
}

/* A slot's new request: its sampler, detokenizer and cache prefix. */
static void slot_start(slot *s) {
    job *j = s->job;
    j->t_start = now_s();
    if (ds_sampler_new(&j->sp, ds_model_n_vocab(S.m), &s->smp, NULL, 0) || ds_detok_new(S.m, 1, &s->detok, NULL, 0)) {
        slot_finish(s, "error");
        return;
    }
    slot_prepare(s, j);
}

static void *engine(void *arg) {
    (void)arg;
    pthread_mutex_lock(&S.mu);
    for (;;) {
        while (!S.quit && !assign()) pthread_cond_wait(&S.cv, &S.mu);
        if (S.quit) break;
        pthread_mutex_unlock(&S.mu);
        /* a round: each prompt one chunk further, then every decoding slot one token, together */
        int n = 0, b = S.o.n_batch ? S.o.n_batch : 512;
        for (int i = 0; i < S.o.n_slots; i++) {
            slot *s = &S.slots[i];
            if (s->job && !s->smp) slot_start(s);
            if (!s->job) continue;
            if (hung_up(s->job)) slot_finish(s, "cancelled");
            else if (s->n_done < s->job->n_prompt) step_prompt(s);
            else if (step_sample(s, &S.ready_tok[n])) S.ready[n++] = s;
        }
        for (int i = 0; i < n; i += b) step_decode(S.ready + i, S.ready_tok + i, n - i < b ? n - i : b);
        pthread_mutex_lock(&S.mu);
    }
    /* shutting down: the waiting and running requests end as cancelled */
    for (job *j; (j = S.queue_head);) {
        S.queue_head = j->next;
        pthread_mutex_lock(&j->mu);
        j->cancelled = j->done = 1;
        pthread_cond_broadcast(&j->cv);
        pthread_mutex_unlock(&j->mu);
        job_unref(j);
    }
    pthread_mutex_unlock(&S.mu);
    for (int i = 0; i < S.o.n_slots; i++)
        if (S.slots[i].job) {
            S.slots[i].job->cancelled = 1;
            slot_finish(&S.slots[i], "cancelled");
        }
    return NULL;
}

/* Queues a request; -1 when the queue is full (503). */
static int submit(job *j) {
    pthread_mutex_lock(&S.mu);
    int busy = 0;
    for (int i = 0; i < S.o.n_slots; i++) busy += S.slots[i].job != NULL;
    int full = busy + S.n_queued >= S.o.n_slots + S.o.queue;
    if (!full) {
        j->next = NULL;
        if (S.queue_tail) S.queue_tail->next = j;
        else S.queue_head = j;
        S.queue_tail = j;
        S.n_queued++;
        S.n_requests++;
        pthread_cond_signal(&S.cv);
    }
    pthread_mutex_unlock(&S.mu);
    return full ? -1 : 0;
}

/* ---- parsing requests ---- */

/* An HTTP error: status and OpenAI's error object. */
typedef struct {
    int status;
    char msg[512];
} http_error;

PRINTF_LIKE(3, 4)
static int bad(http_error *e, int status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    e->status = status;
    return -1;
}

/* The field, checked to be of the type asked (NULL if absent or JSON null). */
static int field(http_error *e, const cJSON *o, const char *name, int type, const cJSON **out) {
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(o, name);
    *out = NULL;
    if (!f || cJSON_IsNull(f)) return 0;
    if (!(f->type & type))
        return bad(e, 400, "'%s' must be %s", name,
                   type == cJSON_Number ? "a number" : type == cJSON_String ? "a string" :
                   type == cJSON_Array ? "an array" : type == cJSON_Object ? "an object" :
                   type == (cJSON_True | cJSON_False) ? "a boolean" : "of another type");
    *out = f;
    return 0;
}

static int number_field(http_error *e, const cJSON *o, const char *name, double lo, double hi, int integer,
                        double *v) {
    const cJSON *f;
    if (field(e, o, name, cJSON_Number, &f)) return -1;
    if (!f) return 0;
    double x = f->valuedouble;
    if (!(x >= lo && x <= hi) || (integer && x != (double)(long long)x))
        return bad(e, 400, "'%s' must be %s in [%g, %g], got %g", name, integer ? "an integer" : "a number", lo, hi, x);
    *v = x;
    return 1;
}

/* The sampling fields shared by both endpoints. */
static int parse_sampling(http_error *e, const cJSON *b, job *j) {
    const cJSON *f;
    double v;
    j->sp = ds_sampler_default_params();
    j->sp.temp = 0.8f, j->sp.top_p = 0.95f;
    j->sp.seed = ((uint64_t)time(NULL) << 20) ^ (uint64_t)(uintptr_t)j;
    int r;
    if ((r = number_field(e, b, "temperature", 0, 2, 0, &v)) < 0) return -1;
    if (r) j->sp.temp = (float)v;
    if ((r = number_field(e, b, "top_p", 0, 1, 0, &v)) < 0) return -1;
    if (r) j->sp.top_p = v > 0 ? (float)v : 1e-6f;
    if ((r = number_field(e, b, "top_k", 0, 1 << 30, 1, &v)) < 0) return -1;
    if (r) j->sp.top_k = (int)v;
    if ((r = number_field(e, b, "min_p", 0, 1, 0, &v)) < 0) return -1;
    if (r) j->sp.min_p = (float)v;
    if ((r = number_field(e, b, "seed", -9.2e18, 9.2e18, 1, &v)) < 0) return -1;
    if (r) j->sp.seed = (uint64_t)(long long)v;
    if ((r = number_field(e, b, "n", 1, 1, 1, &v)) < 0) return bad(e, 400, "'n' must be 1: one choice per request");
    j->max_tokens = -1;
    if ((r = number_field(e, b, "max_tokens", 1, 1 << 30, 1, &v)) < 0) return -1;
    if (r) j->max_tokens = (int)v;
    if ((r = number_field(e, b, "max_completion_tokens", 1, 1 << 30, 1, &v)) < 0) return -1;
    if (r) j->max_tokens = (int)v;
    if (field(e, b, "stream", cJSON_True | cJSON_False, &f)) return -1;
    j->stream = cJSON_IsTrue(f);
    if (field(e, b, "ignore_eos", cJSON_True | cJSON_False, &f)) return -1; /* llama-server's */
    j->ignore_eos = cJSON_IsTrue(f);
    if (field(e, b, "stream_options", cJSON_Object, &f)) return -1;
    const cJSON *u = f ? cJSON_GetObjectItemCaseSensitive(f, "include_usage") : NULL;
    j->include_usage = cJSON_IsTrue(u);
    if (field(e, b, "stop", cJSON_String | cJSON_Array, &f)) return -1;
    int n = !f ? 0 : cJSON_IsString(f) ? 1 : cJSON_GetArraySize(f);
    if (n > 16) return bad(e, 400, "'stop' holds %d strings; at most 16", n);
    j->stop = calloc((size_t)n + 1, sizeof *j->stop);
    if (!j->stop) return bad(e, 500, "out of memory");
    for (int i = 0; i < n; i++) {
        const cJSON *s = cJSON_IsString(f) ? f : cJSON_GetArrayItem(f, i);
        if (!cJSON_IsString(s)) return bad(e, 400, "'stop' must be a string or an array of strings");
        if (!*s->valuestring) continue;
        j->stop[j->n_stop++] = strdup(s->valuestring);
    }
    return 0;
}

/* A message's content: a string, or OpenAI's array of parts whose texts are joined. */
static int content_text(http_error *e, const cJSON *c, int i, char **out) {
    *out = NULL;
    if (!c || cJSON_IsNull(c)) return 0;
    if (cJSON_IsString(c)) return (*out = strdup(c->valuestring)) ? 0 : bad(e, 500, "out of memory");
    if (!cJSON_IsArray(c)) return bad(e, 400, "messages[%d].content must be a string or an array of parts", i);
    char *s = NULL;
    size_t n = 0, cap = 0;
    buf_put(&s, &n, &cap, "", 0);
    const cJSON *p;
    cJSON_ArrayForEach(p, c) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(p, "text");
        if (!cJSON_IsString(t)) {
            free(s);
            return bad(e, 400, "messages[%d].content: only text parts are understood", i);
        }
        buf_put(&s, &n, &cap, t->valuestring, strlen(t->valuestring));
    }
    *out = s;
    return s ? 0 : bad(e, 500, "out of memory");
}

/* The messages, as the chat templates take them; their strings are owned by the request's JSON
   or by *texts. */
typedef struct {
    ds_chat_message *msg;
    ds_tool_call *calls;
    char **texts;
    int n, n_calls, n_texts;
} chat_input;

static void chat_input_free(chat_input *c) {
    for (int i = 0; i < c->n_texts; i++) free(c->texts[i]);
    free(c->texts), free(c->msg), free(c->calls);
}

static int parse_tool_call_list(http_error *e, const cJSON *tc, int i, chat_input *c, ds_chat_message *m) {
    if (!cJSON_IsArray(tc)) return bad(e, 400, "messages[%d].tool_calls must be an array", i);
    m->tool_calls = c->calls + c->n_calls;
    const cJSON *t;
    cJSON_ArrayForEach(t, tc) {
        const cJSON *f = cJSON_GetObjectItemCaseSensitive(t, "function");
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(f, "name");
        const cJSON *args = cJSON_GetObjectItemCaseSensitive(f, "arguments");
        if (!cJSON_IsString(name) || (args && !cJSON_IsString(args) && !cJSON_IsObject(args)))
            return bad(e, 400, "messages[%d].tool_calls: each needs function.name and function.arguments (a JSON string)", i);
        char *a = !args ? strdup("{}") : cJSON_IsString(args) ? strdup(args->valuestring) : cJSON_PrintUnformatted(args);
        if (!a) return bad(e, 500, "out of memory");
        c->texts[c->n_texts++] = a;
        c->calls[c->n_calls++] = (ds_tool_call){"function", name->valuestring, a};
        m->n_tool_calls++;
    }
    return 0;
}

static int parse_messages(http_error *e, const cJSON *b, chat_input *c) {
    const cJSON *ms;
    if (field(e, b, "messages", cJSON_Array, &ms)) return -1;
    if (!ms || !cJSON_GetArraySize(ms)) return bad(e, 400, "'messages' must be a non-empty array");
    int n = cJSON_GetArraySize(ms), n_calls = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, ms) n_calls += cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(m, "tool_calls"));
    c->msg = calloc((size_t)n, sizeof *c->msg);
    c->calls = calloc((size_t)n_calls + 1, sizeof *c->calls);
    c->texts = calloc((size_t)(n + n_calls), sizeof *c->texts);
    if (!c->msg || !c->calls || !c->texts) return bad(e, 500, "out of memory");
    int i = 0;
    cJSON_ArrayForEach(m, ms) {
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
        if (!cJSON_IsObject(m) || !cJSON_IsString(role)) return bad(e, 400, "messages[%d] needs a 'role' string", i);
        const char *r = role->valuestring;
        if (strcmp(r, "system") && strcmp(r, "user") && strcmp(r, "assistant") && strcmp(r, "tool") &&
            strcmp(r, "developer"))
            return bad(e, 400, "messages[%d].role '%.40s' is not system, user, assistant, tool or developer", i, r);
        ds_chat_message *cm = &c->msg[i];
        cm->role = r;
        char *text;
        if (content_text(e, cJSON_GetObjectItemCaseSensitive(m, "content"), i, &text)) return -1;
        if (text) c->texts[c->n_texts++] = text;
        cm->content = text;
        const cJSON *tc = cJSON_GetObjectItemCaseSensitive(m, "tool_calls");
        if (tc && !cJSON_IsNull(tc) && parse_tool_call_list(e, tc, i, c, cm)) return -1;
        if (!cm->content && !cm->n_tool_calls && strcmp(r, "assistant"))
            return bad(e, 400, "messages[%d] (%s) has no content", i, r);
        i++;
    }
    c->n = n;
    return 0;
}

static tool_syntax tools_of(ds_chat_style s) {
    switch (s) {
    case DS_CHAT_DEEPSEEK3:
    case DS_CHAT_DEEPSEEK_R1:
    case DS_CHAT_DEEPSEEK3_1:
    case DS_CHAT_DEEPSEEK_R1_DISTILL: return TOOLS_DEEPSEEK;
    case DS_CHAT_QWEN3: return TOOLS_QWEN3;
    case DS_CHAT_DEEPSEEK3_2: return TOOLS_DSML;
    case DS_CHAT_DEEPSEEK4: return TOOLS_DSML_V4;
    default: return TOOLS_NONE;
    }
}

/* The chat's thinking switch: chat_template_kwargs.thinking / enable_thinking, or DeepSeek's
   API field "thinking": {"type": "enabled" | "disabled"}. -1: the template's default. */
static int thinking_of(const cJSON *b) {
    const cJSON *k = cJSON_GetObjectItemCaseSensitive(b, "chat_template_kwargs"), *t;
    if ((t = cJSON_GetObjectItemCaseSensitive(k, "thinking")) && cJSON_IsBool(t)) return cJSON_IsTrue(t);
    if ((t = cJSON_GetObjectItemCaseSensitive(k, "enable_thinking")) && cJSON_IsBool(t)) return cJSON_IsTrue(t);
    t = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(b, "thinking"), "type");
    if (cJSON_IsString(t)) return !strcmp(t->valuestring, "enabled");
    return -1;
}

static int tokenize(http_error *e, const char *text, size_t len, int add_bos, job *j) {
    char err[256];
    int n = 0;
    if (len > (size_t)INT_MAX / 4) return bad(e, 413, "the prompt is too long");
    ds_status st = ds_tokenize(S.m, text, len, add_bos, NULL, 0, &n, err, sizeof err);
    if (st && st != DS_ERR_SMALL_BUFFER) return bad(e, 400, "the prompt cannot be tokenized: %s", err);
    j->prompt = malloc(((size_t)n + 1) * sizeof *j->prompt);
    if (!j->prompt) return bad(e, 500, "out of memory");
    if (ds_tokenize(S.m, text, len, add_bos, j->prompt, n + 1, &j->n_prompt, err, sizeof err))
        return bad(e, 400, "the prompt cannot be tokenized: %s", err);
    return 0;
}

/* The rendered conversation's tokens, and how the answer is to be read. */
static int parse_chat(http_error *e, const cJSON *b, job *j) {
    chat_input c = {0};
    ds_chat_params p = ds_chat_default_params();
    const cJSON *tools, *choice;
    char *tools_json = NULL, *text = NULL;
    int rc = -1;
    if (parse_messages(e, b, &c) || field(e, b, "tools", cJSON_Array, &tools) ||
        field(e, b, "tool_choice", cJSON_String | cJSON_Object, &choice))
        goto out;
    int no_tools = cJSON_IsString(choice) && !strcmp(choice->valuestring, "none");
    if (tools && cJSON_GetArraySize(tools) && !no_tools) p.tools = tools_json = cJSON_PrintUnformatted(tools);
    p.thinking = thinking_of(b);
    p.style = S.style;
    ds_chat_style style = S.style ? S.style : ds_model_chat_style(S.m);
    if (p.thinking >= 0 && !ds_chat_has_thinking_switch(style)) p.thinking = -1;
    size_t len = 0;
    char err[256];
    ds_status st = ds_chat_apply_ex(S.m, c.msg, c.n, &p, NULL, 0, &len, err, sizeof err);
    if (st == DS_ERR_SMALL_BUFFER && (text = malloc(len + 1)))
        st = ds_chat_apply_ex(S.m, c.msg, c.n, &p, text, len + 1, &len, err, sizeof err);
    if (st) {
        bad(e, 400, "the chat template (%s) cannot render these messages: %s", ds_chat_style_name(style),
            st == DS_ERR_SMALL_BUFFER ? "out of memory" : err);
        goto out;
    }
    j->chat = 1;
    j->in_think = ds_chat_opens_think(style) || (p.thinking == 1 && style != DS_CHAT_QWEN3);
    j->tools = p.tools ? tools_of(style) : TOOLS_NONE;
    rc = tokenize(e, text, len, 0, j); /* the template writes BOS itself */
out:
    free(text);
    free(tools_json);
    chat_input_free(&c);
    return rc;
}

static int parse_completion(http_error *e, const cJSON *b, job *j) {
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(b, "prompt");
    if (cJSON_IsArray(p) && cJSON_GetArraySize(p) == 1) p = cJSON_GetArrayItem(p, 0);
    if (!cJSON_IsString(p)) return bad(e, 400, "'prompt' must be a string (or an array of one string)");
    return tokenize(e, p->valuestring, strlen(p->valuestring), ds_model_add_bos(S.m), j);
}

/* A request for the engine from a body, or an error. */
static job *parse_request(http_error *e, const char *body, size_t n, int chat) {
    cJSON *b = cJSON_ParseWithLength(body, n);
    if (!b || !cJSON_IsObject(b)) {
        cJSON_Delete(b);
        bad(e, 400, "the body is not a JSON object");
        return NULL;
    }
    job *j = calloc(1, sizeof *j);
    if (!j) {
        cJSON_Delete(b);
        bad(e, 500, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->cv, NULL);
    j->refs = 1;
    int rc = parse_sampling(e, b, j) || (chat ? parse_chat(e, b, j) : parse_completion(e, b, j));
    cJSON_Delete(b);
    int n_ctx = ds_context_n_ctx(S.slots[0].ctx);
    if (!rc && j->n_prompt < 1) rc = bad(e, 400, "the prompt is empty");
    if (!rc && j->n_prompt >= n_ctx)
        rc = bad(e, 400, "the prompt has %d tokens but the context holds %d (one more is needed for the answer; raise -c)",
                 j->n_prompt, n_ctx);
    if (rc) {
        job_unref(j);
        return NULL;
    }
    if (j->max_tokens < 0 || j->max_tokens > n_ctx - j->n_prompt) j->max_tokens = n_ctx - j->n_prompt;
    static atomic_uint seq;
    j->created = (long)time(NULL);
    snprintf(j->id, sizeof j->id, "%s-%lx%04x", chat ? "chatcmpl" : "cmpl", j->created, atomic_fetch_add(&seq, 1) & 0xffff);
    j->t_queued = now_s();
    return j;
}

/* ---- HTTP ---- */

/* Sends r (any origin may read it: the page and tools on other ports), then lets it go. */
static enum MHD_Result queue_response(struct MHD_Connection *c, int status, struct MHD_Response *r) {
    if (!r) return MHD_NO;
    MHD_add_response_header(r, "Access-Control-Allow-Origin", "*");
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result send_text(struct MHD_Connection *c, int status, const char *type, const char *s, size_t n,
                                 enum MHD_ResponseMemoryMode mode) {
    struct MHD_Response *r = MHD_create_response_from_buffer(n, (void *)s, mode);
    if (r) MHD_add_response_header(r, "Content-Type", type);
    return queue_response(c, status, r);
}

static enum MHD_Result send_json(struct MHD_Connection *c, int status, cJSON *o) {
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!s) return MHD_NO;
    return send_text(c, status, "application/json", s, strlen(s), MHD_RESPMEM_MUST_FREE);
}

static enum MHD_Result send_error(struct MHD_Connection *c, const http_error *e) {
    static const struct {
        int status;
        const char *type;
    } T[] = {{401, "authentication_error"}, {404, "not_found_error"}, {405, "invalid_request_error"},
             {413, "invalid_request_error"}, {429, "rate_limit_error"}, {500, "server_error"}, {503, "server_error"}};
    const char *type = "invalid_request_error";
    for (size_t i = 0; i < sizeof T / sizeof T[0]; i++)
        if (T[i].status == e->status) type = T[i].type;
    cJSON *o = cJSON_CreateObject(), *er = cJSON_CreateObject();
    cJSON_AddStringToObject(er, "message", e->msg);
    cJSON_AddStringToObject(er, "type", type);
    cJSON_AddNullToObject(er, "param");
    cJSON_AddNullToObject(er, "code");
    cJSON_AddItemToObject(o, "error", er);
    pthread_mutex_lock(&S.mu);
    S.n_errors++;
    pthread_mutex_unlock(&S.mu);
    return send_json(c, e->status, o);
}

PRINTF_LIKE(3, 4)
static enum MHD_Result fail_with(struct MHD_Connection *c, int status, const char *fmt, ...) {
    http_error e = {status, ""};
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e.msg, sizeof e.msg, fmt, ap);
    va_end(ap);
    return send_error(c, &e);
}

static enum MHD_Result models(struct MHD_Connection *c) {
    cJSON *o = cJSON_CreateObject(), *d = cJSON_CreateArray(), *m = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "object", "list");
    cJSON_AddStringToObject(m, "id", S.model_id);
    cJSON_AddStringToObject(m, "object", "model");
    cJSON_AddNumberToObject(m, "created", (double)time(NULL));
    cJSON_AddStringToObject(m, "owned_by", "deepseek");
    cJSON *meta = cJSON_CreateObject();
    cJSON_AddStringToObject(meta, "description", ds_model_desc(S.m));
    cJSON_AddNumberToObject(meta, "n_ctx", ds_context_n_ctx(S.slots[0].ctx));
    cJSON_AddNumberToObject(meta, "n_vocab", ds_model_n_vocab(S.m));
    cJSON_AddStringToObject(meta, "chat_template", ds_chat_style_name(S.style ? S.style : ds_model_chat_style(S.m)));
    cJSON_AddItemToObject(m, "meta", meta);
    cJSON_AddItemToArray(d, m);
    cJSON_AddItemToObject(o, "data", d);
    return send_json(c, 200, o);
}

static enum MHD_Result metrics(struct MHD_Connection *c) {
    char *s = NULL;
    size_t n = 0, cap = 0;
    pthread_mutex_lock(&S.mu);
    int busy = 0;
    for (int i = 0; i < S.o.n_slots; i++) busy += S.slots[i].job != NULL;
    const struct {
        const char *name, *type, *help;
        double v;
    } M[] = {
        {"requests_total", "counter", "Requests accepted for generation.", (double)S.n_requests},
        {"requests_processing", "gauge", "Requests in a slot now.", busy},
        {"requests_deferred", "gauge", "Requests waiting for a slot.", S.n_queued},
        {"errors_total", "counter", "Requests answered with an error.", (double)S.n_errors},
        {"prompt_tokens_total", "counter", "Prompt tokens evaluated (cached ones not counted).", (double)S.n_prompt_tokens},
        {"prompt_seconds_total", "counter", "Time spent evaluating prompts.", S.s_prompt},
        {"tokens_predicted_total", "counter", "Tokens generated.", (double)S.n_predicted},
        {"tokens_predicted_seconds_total", "counter", "Time spent generating.", S.s_predicted},
        {"prompt_cache_hit_tokens_total", "counter", "Prompt tokens reused from a cache.", (double)S.n_cache_hit_tokens},
        {"prompt_cache_disk_hits_total", "counter", "Prompts that started from a --cache-dir file.", (double)S.n_disk_hits},
        {"prompt_cache_disk_entries", "gauge", "Files in --cache-dir.", atomic_load(&S.disk_entries)},
        {"slots", "gauge", "Slots (-np).", S.o.n_slots},
        {"decode_batches_total", "counter", "Decode passes that took several slots' tokens at once.", (double)S.n_batches},
        {"decode_batch_tokens_total", "counter", "Tokens those passes took.", (double)S.n_batch_rows},
    };
    pthread_mutex_unlock(&S.mu);
    for (size_t i = 0; i < sizeof M / sizeof M[0]; i++) {
        char line[512];
        int k = snprintf(line, sizeof line, "# HELP deepseek_%s %s\n# TYPE deepseek_%s %s\ndeepseek_%s %.17g\n",
                         M[i].name, M[i].help, M[i].name, M[i].type, M[i].name, M[i].v);
        buf_put(&s, &n, &cap, line, (size_t)k);
    }
    if (!s) return MHD_NO;
    return send_text(c, 200, "text/plain; version=0.0.4", s, n, MHD_RESPMEM_MUST_FREE);
}

/* The streamed body: blocks (this connection's own thread) until the engine has more. */
static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max) {
    job *j = cls;
    (void)pos;
    pthread_mutex_lock(&j->mu);
    while (j->n_sent == j->n_out && !j->done) pthread_cond_wait(&j->cv, &j->mu);
    size_t k = j->n_out - j->n_sent;
    if (k > max) k = max;
    memcpy(buf, j->out + j->n_sent, k);
    j->n_sent += k;
    int end = !k, err = end && j->cancelled;
    pthread_mutex_unlock(&j->mu);
    return err ? MHD_CONTENT_READER_END_WITH_ERROR : end ? MHD_CONTENT_READER_END_OF_STREAM : (ssize_t)k;
}

static void stream_free(void *cls) {
    job *j = cls;
    pthread_mutex_lock(&j->mu);
    j->cancelled |= !j->done;
    j->fd_ok = 0;
    pthread_mutex_unlock(&j->mu);
    job_unref(j);
}

/* Waits for the whole answer (non-streamed) and sends it. */
static enum MHD_Result answer_whole(struct MHD_Connection *c, job *j) {
    pthread_mutex_lock(&j->mu);
    while (!j->done) pthread_cond_wait(&j->cv, &j->mu);
    j->fd_ok = 0;
    int ok = j->n_out > 0;
    char *out = j->out;
    size_t n = j->n_out;
    j->out = NULL, j->n_out = j->cap_out = 0;
    pthread_mutex_unlock(&j->mu);
    const char *finish = j->finish;
    job_unref(j);
    if (!ok) {
        free(out);
        return fail_with(c, 500, "generation failed (%s)", finish ? finish : "cancelled");
    }
    return send_text(c, 200, "application/json", out, n, MHD_RESPMEM_MUST_FREE);
}

static enum MHD_Result generate(struct MHD_Connection *c, const char *body, size_t n, int chat) {
    http_error e = {0};
    job *j = parse_request(&e, body, n, chat);
    if (!j) return send_error(c, &e);
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    j->fd = ci ? ci->connect_fd : -1;
    j->fd_ok = ci != NULL;
    j->refs = 2; /* this connection, the engine */
    if (submit(j)) {
        j->refs = 1;
        job_unref(j);
        return fail_with(c, 503, "all %d slots are busy and %d requests wait: try again later", S.o.n_slots, S.o.queue);
    }
    if (!j->stream) return answer_whole(c, j);
    struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, stream_read, j, stream_free);
    if (!r) {
        stream_free(j);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", "text/event-stream");
    MHD_add_response_header(r, "Cache-Control", "no-cache");
    return queue_response(c, 200, r);
}

/* A request's body as it arrives. */
typedef struct {
    char *body;
    size_t n, cap;
    int too_big;
} upload;

static int authorized(struct MHD_Connection *c) {
    if (!S.o.api_key) return 1;
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    return h && !strncmp(h, "Bearer ", 7) && !strcmp(h + 7, S.o.api_key);
}

static int path_is(const char *url, const char *name) {
    return !strcmp(url, name) || (!strncmp(url, "/v1", 3) && !strcmp(url + 3, name));
}

static enum MHD_Result route(struct MHD_Connection *c, const char *url, const char *method, const upload *u) {
    int get = !strcmp(method, "GET") || !strcmp(method, "HEAD"), post = !strcmp(method, "POST");
    if (!strcmp(method, "OPTIONS")) {
        struct MHD_Response *r = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
        if (r) MHD_add_response_header(r, "Access-Control-Allow-Headers", "Authorization, Content-Type");
        if (r) MHD_add_response_header(r, "Access-Control-Allow-Methods", "GET, POST, OPTIONS");
        return queue_response(c, 204, r);
    }
    if (!strcmp(url, "/") || !strcmp(url, "/index.html"))
        return get ? send_text(c, 200, "text/html; charset=utf-8", SERVER_PAGE, SERVER_PAGE_LEN, MHD_RESPMEM_PERSISTENT)
                   : fail_with(c, 405, "%s %s: only GET", method, url);
    if (!strcmp(url, "/health"))
        return send_text(c, 200, "application/json", "{\"status\":\"ok\"}", 15, MHD_RESPMEM_PERSISTENT);
    if (!strcmp(url, "/metrics")) return metrics(c);
    int chat = path_is(url, "/chat/completions"), comp = path_is(url, "/completions");
    int mod = path_is(url, "/models");
    if (!chat && !comp && !mod) return fail_with(c, 404, "no such endpoint: %s %s", method, url);
    if (!authorized(c)) return fail_with(c, 401, "a valid API key is needed: 'Authorization: Bearer KEY'");
    if (mod) return get ? models(c) : fail_with(c, 405, "%s %s: only GET", method, url);
    if (!post) return fail_with(c, 405, "%s %s: only POST", method, url);
    if (u->too_big) return fail_with(c, 413, "the body is larger than %ld bytes", S.o.max_body);
    return generate(c, u->body ? u->body : "", u->n, chat);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *data, size_t *size, void **con_cls) {
    (void)cls, (void)version;
    upload *u = *con_cls;
    if (!u) { /* the headers only: the body follows */
        if (!(u = calloc(1, sizeof *u))) return MHD_NO;
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
        if (cl && strtoll(cl, NULL, 10) > S.o.max_body) u->too_big = 1;
        *con_cls = u;
        return MHD_YES;
    }
    if (*size) {
        if (!u->too_big && u->n + *size > (size_t)S.o.max_body) u->too_big = 1;
        if (!u->too_big && buf_put(&u->body, &u->n, &u->cap, data, *size)) u->too_big = 1;
        *size = 0; /* read (or dropped when too big: the 413 comes once it is all in) */
        return MHD_YES;
    }
    if (S.o.verbose) fprintf(stderr, PROG ": %s %s (%zu bytes)\n", method, url, u->n);
    return route(c, url, method, u);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe) {
    (void)cls, (void)c, (void)toe;
    upload *u = *con_cls;
    if (u) free(u->body), free(u);
    *con_cls = NULL;
}

/* ---- start and stop ---- */

static int load(void) {
    char err[512];
    if (ds_model_load(S.o.model, &S.m, err, sizeof err)) {
        fprintf(stderr, PROG ": %s\n", err);
        return -1;
    }
    const char *base = strrchr(S.o.model, '/');
    S.model_id = base ? base + 1 : S.o.model;
    if (S.o.chat_template && !(S.style = ds_chat_style_from_name(S.o.chat_template))) {
        fprintf(stderr, PROG ": --chat-template: unknown format '%s' (deepseek --chat-template list)\n", S.o.chat_template);
        return -1;
    }
    if (!S.style && !ds_model_chat_style(S.m)) {
        S.style = DS_CHAT_CHATML;
        fprintf(stderr, PROG ": note: the model's chat template is %s: chats are rendered as chatml "
                        "(--chat-template NAME picks another)\n",
                ds_model_chat_template(S.m) ? "not one this program knows" : "missing");
    }
    struct stat st;
    stat(S.o.model, &st);
    const char *desc = ds_model_desc(S.m);
    S.model_key = fnv1a(fnv1a(1469598103934665603ull, desc, strlen(desc)), &st.st_size, sizeof st.st_size);
    S.slots = calloc((size_t)S.o.n_slots, sizeof *S.slots);
    S.ready = calloc((size_t)S.o.n_slots, sizeof *S.ready);
    S.ready_tok = calloc((size_t)S.o.n_slots, sizeof *S.ready_tok);
    S.batch = calloc((size_t)S.o.n_slots, sizeof *S.batch);
    if (!S.slots || !S.ready || !S.ready_tok || !S.batch) return -1;
    ds_context_params cp = ds_context_default_params();
    cp.n_ctx = S.o.n_ctx;
    cp.n_threads = S.o.n_threads ? S.o.n_threads : ds_physical_cores();
    cp.n_batch = S.o.n_batch;
    cp.cache_type = S.o.cache_type;
    for (int i = 0; i < S.o.n_slots; i++) {
        if (ds_context_new(S.m, &cp, &S.slots[i].ctx, err, sizeof err)) {
            fprintf(stderr, PROG ": slot %d: %s\n", i, err);
            return -1;
        }
        S.slots[i].tokens = malloc((size_t)ds_context_n_ctx(S.slots[i].ctx) * sizeof(int32_t));
        if (!S.slots[i].tokens) return -1;
    }
    if (S.o.cache_dir) {
        if (mkdir(S.o.cache_dir, 0755) && errno != EEXIST) {
            fprintf(stderr, PROG ": --cache-dir %s: %s\n", S.o.cache_dir, strerror(errno));
            return -1;
        }
        disk_scan();
        disk_trim();
    }
    return 0;
}

static void unload(void) {
    for (int i = 0; S.slots && i < S.o.n_slots; i++) {
        ds_context_free(S.slots[i].ctx);
        free(S.slots[i].tokens);
    }
    free(S.slots), free(S.ready), free(S.ready_tok), free(S.batch);
    for (int i = 0; i < S.n_disk; i++) free(S.disk[i].tokens);
    free(S.disk);
    ds_model_free(S.m);
}

static struct MHD_Daemon *listen_on(void) {
    struct sockaddr_storage ss = {0};
    struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
    if (inet_pton(AF_INET, S.o.host, &a4->sin_addr) == 1) a4->sin_family = AF_INET, a4->sin_port = htons((uint16_t)S.o.port);
    else if (inet_pton(AF_INET6, S.o.host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6, a6->sin6_port = htons((uint16_t)S.o.port);
        flags |= MHD_USE_IPv6;
    } else {
        fprintf(stderr, PROG ": --host %s: not an IPv4 or IPv6 address\n", S.o.host);
        return NULL;
    }
    struct MHD_Daemon *d = MHD_start_daemon(flags, (uint16_t)S.o.port, NULL, NULL, on_request, NULL,
                                            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
                                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
                                            MHD_OPTION_CONNECTION_TIMEOUT, 600u, MHD_OPTION_END);
    if (!d) fprintf(stderr, PROG ": cannot listen on %s port %d: %s\n", S.o.host, S.o.port, strerror(errno));
    return d;
}

int main(int argc, char **argv) {
    if (parse_args(argc, argv, &S.o)) return 1;
    signal(SIGPIPE, SIG_IGN);
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL); /* every thread started below inherits the block */
    pthread_mutex_init(&S.mu, NULL);
    pthread_cond_init(&S.cv, NULL);
    if (load()) {
        unload();
        return 1;
    }
    pthread_t eng;
    struct MHD_Daemon *d = NULL;
    if (pthread_create(&eng, NULL, engine, NULL)) {
        fprintf(stderr, PROG ": cannot start the engine thread\n");
        unload();
        return 1;
    }
    d = listen_on();
    if (d) {
        const union MHD_DaemonInfo *di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
        fprintf(stderr, PROG ": listening on http://%s%s%s:%u\n", strchr(S.o.host, ':') ? "[" : "", S.o.host,
                strchr(S.o.host, ':') ? "]" : "", di ? di->port : (unsigned)S.o.port);
        int sig;
        sigwait(&stop, &sig);
        fprintf(stderr, PROG ": stopping (%s)\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    }
    pthread_mutex_lock(&S.mu);
    S.quit = 1;
    pthread_cond_broadcast(&S.cv);
    pthread_mutex_unlock(&S.mu);
    pthread_join(eng, NULL);
    if (d) MHD_stop_daemon(d);
    unload();
    return d ? 0 : 1;
}
