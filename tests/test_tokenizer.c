/* test_tokenizer - the tokenizer and detokenizer against Hugging Face's vectors.

   usage: test_tokenizer TOKENIZER.gguf FIXTURE_DIR

   The GGUF is made from the fixture's tokenizer.json by our own deepseek-convert --vocab-only,
   so this checks the whole path a model file takes. Every row of encode.jsonl, decode.jsonl,
   decode_skip_special.jsonl, pretokenize.jsonl, chat.jsonl (ids of the rendered text) and
   nfc.jsonl (the normalized text the pieces make up) present in FIXTURE_DIR must match
   exactly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include "deepseek.h"
#include "chatjson.h"
#include "testutil.h"

static ds_model *model;
static const char *fixture;

/* Each line of FIXTURE_DIR/name parsed as JSON, or n = 0 when the file is absent. */
typedef struct {
    cJSON **rows;
    int n;
} jsonl;

/* cJSON strings end at U+0000, which the fixtures' texts contain: the escape is swapped for
   U+10FFFF (absent from the fixtures) before parsing, and back by str_of(). */
static const char NUL_STAND_IN[] = "\xF4\x8F\xBF\xBF";

static void protect_nul(char *line) {
    for (char *p = line; *p; p++) {
        if (*p != '\\') continue;
        if (!strncmp(p, "\\u0000", 6)) {
            memcpy(p, NUL_STAND_IN, 4);
            memmove(p + 4, p + 6, strlen(p + 6) + 1);
            p += 3;
        } else if (p[1]) {
            p++;
        }
    }
}

static jsonl read_jsonl(const char *name) {
    char path[512];
    size_t size;
    jsonl j = {0};
    snprintf(path, sizeof path, "%s/%s", fixture, name);
    char *text = (char *)slurp(path, &size);
    if (!text) return j;
    text = realloc(text, size + 1);
    text[size] = 0;
    for (char *line = text, *nl; *line; line = nl + 1) {
        nl = strchr(line, '\n');
        if (!nl) nl = line + strlen(line) - 1;
        else *nl = 0;
        if (!*line) continue;
        protect_nul(line);
        j.rows = realloc(j.rows, (size_t)(j.n + 1) * sizeof *j.rows);
        j.rows[j.n] = cJSON_Parse(line);
        assert_non_null(j.rows[j.n]);
        j.n++;
    }
    free(text);
    return j;
}

static void free_jsonl(jsonl *j) {
    for (int i = 0; i < j->n; i++) cJSON_Delete(j->rows[i]);
    free(j->rows);
}

static int read_ids(const cJSON *arr, int32_t **out) {
    int n = cJSON_GetArraySize(arr);
    *out = malloc((size_t)(n ? n : 1) * sizeof **out);
    for (int i = 0; i < n; i++) (*out)[i] = (int32_t)cJSON_GetArrayItem(arr, i)->valuedouble;
    return n;
}

static void print_ids(const char *what, const int32_t *ids, int n) {
    fprintf(stderr, "  %s:", what);
    for (int i = 0; i < n; i++) fprintf(stderr, " %d", ids[i]);
    fprintf(stderr, "\n");
}

/* ds_tokenize as a count: the text's token count (whether or not it fitted in cap), or -1 where
   it fails. The status must say which: DS_OK only when every id fitted. */
static int tokenize(const ds_model *m, const char *text, size_t len, int add_bos, int32_t *out, int cap, char *err,
                    size_t err_size) {
    int n = -7;
    ds_status st = ds_tokenize(m, text, len, add_bos, out, cap, &n, err, err_size);
    if (st != DS_OK && st != DS_ERR_SMALL_BUFFER) {
        assert_int_equal(n, 0);
        return -1;
    }
    assert_int_equal(st, n <= cap ? DS_OK : DS_ERR_SMALL_BUFFER);
    return n;
}

/* Tokenize text; returns the count, ids in *out (malloc'd). NFC can make text three times longer. */
static int encode(const char *text, size_t len, int add_bos, int32_t **out) {
    char err[256];
    *out = malloc((3 * len + 2) * sizeof **out);
    int n = tokenize(model, text, len, add_bos, *out, 3 * (int)len + 2, err, sizeof err);
    if (n < 0) fprintf(stderr, "tokenize failed: %s\n", err);
    assert_true(n >= 0 && n <= 3 * (int)len + 1);
    return n;
}

/* The string under key, with U+0000 restored: a malloc'd copy, its length in *len. */
static char *unprotect(const cJSON *s, size_t *len) {
    assert_true(cJSON_IsString(s));
    char *t = malloc(strlen(s->valuestring) + 1), *w = t;
    for (const char *r = s->valuestring; *r;) {
        if (!strncmp(r, NUL_STAND_IN, 4)) {
            *w++ = 0;
            r += 4;
        } else *w++ = *r++;
    }
    *w = 0;
    *len = (size_t)(w - t);
    return t;
}

static char *str_of(const cJSON *row, const char *key, size_t *len) {
    return unprotect(cJSON_GetObjectItemCaseSensitive(row, key), len);
}

/* Rows whose "text" must encode to "ids" (encode.jsonl, and chat.jsonl's rendered text). */
static int check_encode_rows(const char *file) {
    jsonl j = read_jsonl(file);
    int bad = 0;
    for (int r = 0; r < j.n; r++) {
        size_t len;
        char *text = str_of(j.rows[r], "text", &len);
        int32_t *want, *got;
        int nw = read_ids(cJSON_GetObjectItemCaseSensitive(j.rows[r], "ids"), &want);
        int ng = encode(text, len, 0, &got);
        if (ng != nw || memcmp(want, got, (size_t)nw * sizeof *want)) {
            fprintf(stderr, "%s line %d: \"%s\"\n", file, r + 1, text);
            print_ids("want", want, nw);
            print_ids("got ", got, ng);
            bad++;
        }
        free(want);
        free(got);
        free(text);
    }
    free_jsonl(&j);
    return bad;
}

static void test_encode(void **state) {
    (void)state;
    assert_int_equal(check_encode_rows("encode.jsonl"), 0);
}

/* chat.jsonl end to end: the model's own template (recognised from the GGUF) renders the
   text, which then encodes to the ids. */
static void test_chat(void **state) {
    (void)state;
    jsonl j = read_jsonl("chat.jsonl");
    if (!j.n) skip(); /* a tokenizer without DeepSeek's chat template */
    assert_int_equal(ds_model_chat_style(model), DS_CHAT_DEEPSEEK3);
    for (int r = 0; r < j.n; r++) {
        size_t len;
        char *want = str_of(j.rows[r], "text", &len);
        conversation c = to_conversation(cJSON_GetObjectItemCaseSensitive(j.rows[r], "messages"));
        int gen = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j.rows[r], "add_generation_prompt"));
        size_t n = 0;
        assert_int_equal(ds_chat_apply(model, c.msgs, c.n, gen, NULL, 0, &n, NULL, 0), DS_ERR_SMALL_BUFFER);
        assert_int_equal(n, len);
        char *got = malloc(n + 1);
        assert_int_equal(ds_chat_apply(model, c.msgs, c.n, gen, got, n + 1, &n, NULL, 0), DS_OK);
        assert_int_equal(n, len);
        if (strcmp(got, want)) fprintf(stderr, "chat.jsonl line %d: got \"%s\"\n", r + 1, got);
        assert_string_equal(got, want);
        free(got);
        free(want);
        free_conversation(&c);
    }
    free_jsonl(&j);
    assert_int_equal(check_encode_rows("chat.jsonl"), 0);
}

static char *decode(const int32_t *ids, int n, int skip, size_t *len) {
    *len = ds_detokenize(model, ids, n, skip, NULL, 0);
    char *buf = malloc(*len + 1);
    assert_int_equal(ds_detokenize(model, ids, n, skip, buf, *len + 1), *len);
    assert_int_equal(buf[*len], 0);
    return buf;
}

/* The streaming decoder, token by token, must give the same text as the whole-sequence one. */
static char *decode_stream(const int32_t *ids, int n, int skip, size_t *len) {
    ds_detok *d = NULL;
    assert_int_equal(ds_detok_new(model, skip, &d, NULL, 0), DS_OK);
    char *out = malloc(1);
    *len = 0;
    for (int i = 0; i <= n; i++) {
        size_t k;
        const char *piece = i < n ? ds_detok_push(d, ids[i], &k) : ds_detok_flush(d, &k);
        out = realloc(out, *len + k + 1);
        memcpy(out + *len, piece, k);
        *len += k;
    }
    out[*len] = 0;
    ds_detok_free(d);
    return out;
}

static int check_decode_rows(const char *file, int skip) {
    jsonl j = read_jsonl(file);
    int bad = 0;
    for (int r = 0; r < j.n; r++) {
        size_t want_len, got_len, stream_len;
        char *want = str_of(j.rows[r], "text", &want_len);
        int32_t *ids;
        int n = read_ids(cJSON_GetObjectItemCaseSensitive(j.rows[r], "ids"), &ids);
        char *got = decode(ids, n, skip, &got_len), *streamed = decode_stream(ids, n, skip, &stream_len);
        if (got_len != want_len || memcmp(got, want, want_len)) {
            fprintf(stderr, "%s line %d: want \"%s\" got \"%s\"\n", file, r + 1, want, got);
            bad++;
        }
        if (stream_len != got_len || memcmp(streamed, got, got_len)) {
            fprintf(stderr, "%s line %d: streamed \"%s\" differs from \"%s\"\n", file, r + 1, streamed, got);
            bad++;
        }
        free(got);
        free(streamed);
        free(ids);
        free(want);
    }
    free_jsonl(&j);
    return bad;
}

static void test_decode(void **state) {
    (void)state;
    assert_int_equal(check_decode_rows("decode.jsonl", 0), 0);
    assert_int_equal(check_decode_rows("decode_skip_special.jsonl", 1), 0);
}

typedef struct {
    char **piece;
    size_t *len;
    int n, cap;
} pieces;

static void collect(const char *p, size_t n, void *user) {
    pieces *ps = user;
    if (ps->n == ps->cap) { /* doubling: a random text has a million pieces */
        ps->cap = ps->cap ? 2 * ps->cap : 16;
        ps->piece = realloc(ps->piece, (size_t)ps->cap * sizeof *ps->piece);
        ps->len = realloc(ps->len, (size_t)ps->cap * sizeof *ps->len);
    }
    ps->piece[ps->n] = malloc(n + 1);
    memcpy(ps->piece[ps->n], p, n);
    ps->piece[ps->n][n] = 0;
    ps->len[ps->n++] = n;
}

static void free_pieces(pieces *ps) {
    for (int i = 0; i < ps->n; i++) free(ps->piece[i]);
    free(ps->piece);
    free(ps->len);
}

/* The text the pieces make up: the text itself, normalized where the tokenizer normalizes. */
static char *joined_pieces(const char *text, size_t len, size_t *out_len) {
    pieces ps = {0};
    char err[256];
    assert_int_equal(ds_pretokenize(model, text, len, collect, &ps, err, sizeof err), DS_OK);
    size_t n = 0;
    for (int i = 0; i < ps.n; i++) n += ps.len[i];
    char *out = malloc(n + 1), *w = out;
    for (int i = 0; i < ps.n; i++) w = (char *)memcpy(w, ps.piece[i], ps.len[i]) + ps.len[i];
    *w = 0;
    *out_len = n;
    free_pieces(&ps);
    return out;
}

static void test_pretokenize(void **state) {
    (void)state;
    jsonl j = read_jsonl("pretokenize.jsonl");
    int bad = 0;
    for (int r = 0; r < j.n; r++) {
        size_t len;
        char *text = str_of(j.rows[r], "text", &len);
        const cJSON *want = cJSON_GetObjectItemCaseSensitive(j.rows[r], "pieces");
        pieces got = {0};
        char err[256];
        assert_int_equal(ds_pretokenize(model, text, len, collect, &got, err, sizeof err), DS_OK);
        bool same = got.n == cJSON_GetArraySize(want);
        for (int i = 0; same && i < got.n; i++) {
            size_t wl;
            char *w = unprotect(cJSON_GetArrayItem(want, i), &wl);
            same = wl == got.len[i] && !memcmp(w, got.piece[i], wl);
            free(w);
        }
        if (!same) {
            fprintf(stderr, "pretokenize.jsonl line %d: \"%s\" gives", r + 1, text);
            for (int i = 0; i < got.n; i++) fprintf(stderr, " [%s]", got.piece[i]);
            fprintf(stderr, "\n");
            bad++;
        }
        free_pieces(&got);
        free(text);
    }
    free_jsonl(&j);
    assert_int_equal(bad, 0);
}

/* nfc.jsonl: the pieces of "text" make up "nfc", its normalization form C. */
static void test_nfc(void **state) {
    (void)state;
    jsonl j = read_jsonl("nfc.jsonl");
    if (!j.n) skip();
    int bad = 0;
    for (int r = 0; r < j.n; r++) {
        size_t len, want_len, got_len;
        char *text = str_of(j.rows[r], "text", &len), *want = str_of(j.rows[r], "nfc", &want_len);
        char *got = joined_pieces(text, len, &got_len);
        if (got_len != want_len || memcmp(got, want, want_len)) {
            fprintf(stderr, "nfc.jsonl line %d: \"%s\" normalized to \"%s\", want \"%s\"\n", r + 1, text, got, want);
            bad++;
        }
        free(text);
        free(want);
        free(got);
    }
    free_jsonl(&j);
    assert_int_equal(bad, 0);
}

/* Every encode.jsonl text decodes back to itself, normalized as the tokenizer normalizes, but for
   rows marked lossy: Hugging Face decodes DeepSeek LLM's added byte symbols ("ü", ...) as bytes. */
static void test_round_trip(void **state) {
    (void)state;
    jsonl j = read_jsonl("encode.jsonl");
    for (int r = 0; r < j.n; r++) {
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j.rows[r], "lossy"))) continue;
        size_t len, back_len, want_len;
        char *text = str_of(j.rows[r], "text", &len), *want = joined_pieces(text, len, &want_len);
        int32_t *ids;
        int n = encode(text, len, 0, &ids);
        char *back = decode(ids, n, 0, &back_len);
        assert_int_equal(back_len, want_len);
        assert_memory_equal(back, want, want_len);
        free(back);
        free(ids);
        free(text);
        free(want);
    }
    free_jsonl(&j);
}

/* FIXTURE_DIR/name parsed, or NULL when absent. */
static cJSON *read_json(const char *name) {
    char path[512];
    size_t size;
    snprintf(path, sizeof path, "%s/%s", fixture, name);
    char *text = (char *)slurp(path, &size);
    if (!text) return NULL;
    text = realloc(text, size + 1);
    text[size] = 0;
    cJSON *j = cJSON_Parse(text);
    free(text);
    return j;
}

/* Whether Hugging Face adds BOS to this tokenizer's encodings: tokenizer_config.json's
   add_bos_token, else a TemplateProcessing post-processor that starts with a special token. */
static int fixture_adds_bos(void) {
    cJSON *tc = read_json("tokenizer_config.json");
    const cJSON *add = cJSON_GetObjectItemCaseSensitive(tc, "add_bos_token"), *e;
    int adds = cJSON_IsBool(add) ? cJSON_IsTrue(add) : 0;
    if (!cJSON_IsBool(add)) {
        cJSON *tj = read_json("tokenizer.json");
        const cJSON *pp = cJSON_GetObjectItemCaseSensitive(tj, "post_processor");
        const cJSON *procs = cJSON_GetObjectItemCaseSensitive(pp, "processors");
        cJSON_ArrayForEach(e, procs) if (!strcmp(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "type")),
                                                 "TemplateProcessing")) {
            const cJSON *first = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(e, "single"), 0);
            adds = cJSON_GetObjectItemCaseSensitive(first, "SpecialToken") != NULL;
        }
        cJSON_Delete(tj);
    }
    cJSON_Delete(tc);
    return adds;
}

static void test_bos_and_buffer(void **state) {
    (void)state;
    const char *text = "Hello world, 12345!";
    int32_t *raw, *with_bos;
    int n = encode(text, strlen(text), 0, &raw);
    int nb = encode(text, strlen(text), 1, &with_bos), bos = ds_model_bos(model);
    assert_int_equal(ds_model_add_bos(model), fixture_adds_bos());
    assert_int_equal(nb, n + (bos >= 0));
    if (bos >= 0) assert_int_equal(with_bos[0], bos);
    assert_memory_equal(with_bos + (bos >= 0), raw, (size_t)n * sizeof *raw);
    /* a short buffer: the full count comes back and nothing is written past cap */
    int32_t small[3] = {-7, -7, -7};
    char err[128];
    assert_int_equal(tokenize(model, text, strlen(text), 0, small, 2, err, sizeof err), n);
    assert_int_equal(small[0], raw[0]);
    assert_int_equal(small[2], -7);
    assert_int_equal(tokenize(model, "", 0, 0, small, 3, err, sizeof err), 0);
    free(raw);
    free(with_bos);
}

static void test_invalid_utf8(void **state) {
    (void)state;
    static const char *const bad[] = {"ab\xC0\x80", "\xED\xA0\x80", "x\xF4\x90\x80\x80", "\xE4\xB8", "\xFF"};
    char err[128];
    int32_t ids[16];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = 0;
        assert_int_equal(tokenize(model, bad[i], strlen(bad[i]), 0, ids, 16, err, sizeof err), -1);
        assert_non_null(strstr(err, "not valid UTF-8 at byte offset"));
    }
    /* U+0000 is valid text */
    assert_true(tokenize(model, "a\0b", 3, 0, ids, 16, err, sizeof err) >= 2);
}

/* Leave out of s[0..n) the one-character added tokens of the fixture (DeepSeek LLM's byte symbols
   "ø", "ü", ...: Hugging Face decodes them as the bytes they stand for, not as their text).
   Returns the new length. */
static size_t drop_added_chars(char *s, size_t n) {
    cJSON *tj = read_json("tokenizer.json"), *e;
    assert_non_null(tj);
    const cJSON *added = cJSON_GetObjectItemCaseSensitive(tj, "added_tokens");
    cJSON_ArrayForEach(e, added) {
        const char *c = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "content"));
        size_t k = c ? strlen(c) : 0, w = 0;
        int one =
            k && (unsigned char)c[0] >= 0xC0 && k == 2u + ((unsigned char)c[0] >= 0xE0) + ((unsigned char)c[0] >= 0xF0);
        for (size_t i = 0; one && i < n;) {
            if (i + k <= n && !memcmp(s + i, c, k)) i += k;
            else s[w++] = s[i++];
        }
        if (one) n = w;
    }
    cJSON_Delete(tj);
    return n;
}

/* Random bytes: repaired with ds_utf8_lossy, they encode and decode back exactly (normalized as
   the tokenizer normalizes). */
static void test_random_bytes(void **state) {
    (void)state;
    size_t n = 3 << 20, invalid;
    char *raw = malloc(n), *text = malloc(3 * n), *back;
    uint64_t x = 0x9E3779B97F4A7C15ull;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        /* mostly ASCII and UTF-8 lead/continuation bytes, so that long valid stretches occur */
        raw[i] = (char)(x % 4 ? (x >> 8) % 128 : (x >> 16) % 256);
    }
    size_t len = drop_added_chars(text, ds_utf8_lossy(raw, n, text, &invalid)), want_len;
    assert_true(invalid > 0);
    int32_t *ids;
    int k = encode(text, len, 0, &ids);
    size_t back_len;
    back = decode(ids, k, 0, &back_len);
    char *want = joined_pieces(text, len, &want_len);
    assert_int_equal(back_len, want_len);
    assert_memory_equal(back, want, want_len);
    free(raw);
    free(text);
    free(back);
    free(want);
    free(ids);
}

static void test_lossy(void **state) {
    (void)state;
    char out[64];
    size_t bad;
    /* one U+FFFD per maximal invalid subpart (the fixture's decode rows, as bytes) */
    assert_int_equal(ds_utf8_lossy("\xE4\xB8", 2, out, &bad), 3);
    assert_int_equal(bad, 1);
    assert_int_equal(ds_utf8_lossy("\xC0\x80", 2, out, &bad), 6);
    assert_int_equal(ds_utf8_lossy("\xED\xA0\x80", 3, out, &bad), 9);
    assert_int_equal(ds_utf8_lossy("\xF4\x90\x80\x80", 4, out, &bad), 12);
    assert_int_equal(ds_utf8_lossy("a\xE4\xB8\xAD", 4, out, &bad), 4);
    assert_int_equal(bad, 0);
}

static const char *gguf_path;

/* Load a damaged copy; if it loads, tokenizing and decoding must still be safe. */
static int try_damaged(const uint8_t *b, size_t n) {
    /* one name per process: meson runs both tokenizer tests at once in the same folder, and a
       file truncated while the other has it mapped is a SIGBUS there */
    char path[64], err[256];
    snprintf(path, sizeof path, "test_tokenizer_damaged_%ld.gguf", (long)getpid());
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(b, 1, n, fp), n);
    fclose(fp);
    ds_model *m;
    int loaded = ds_model_load(path, &m, err, sizeof err) == DS_OK;
    if (!loaded) assert_true(strlen(err) > 0);
    if (loaded) {
        static const char text[] = "Hello w\xC3\xB6rld 12345 <\xEF\xBD\x9CUser\xEF\xBD\x9C>  \n\t!";
        int32_t ids[64];
        int k = tokenize(m, text, sizeof text - 1, 1, ids, 64, err, sizeof err);
        assert_true(k <= 64);
        char out[512];
        if (k > 0) ds_detokenize(m, ids, k, 0, out, sizeof out);
        ds_model_free(m);
    }
    remove(path);
    return loaded;
}

/* Truncated and corrupted vocabularies are refused with a message or still work: never a crash. */
static void test_damaged_files(void **state) {
    (void)state;
    size_t n = 0;
    uint8_t *orig = slurp(gguf_path, &n), *b = malloc(n);
    assert_non_null(orig);
    int loaded = 0, tries = 0;
    for (size_t cut = 0; cut < n; cut += 1 + cut / 8, tries++) loaded += try_damaged(orig, cut);
    uint64_t x = 12345;
    for (int i = 0; i < 400; i++, tries++) {
        memcpy(b, orig, n);
        for (int k = 0; k < 1 + i % 4; k++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            b[x % n] = (uint8_t)(x >> 32);
        }
        loaded += try_damaged(b, n);
    }
    print_message("  %d damaged files, %d still loaded\n", tries, loaded);
    free(orig);
    free(b);
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: test_tokenizer TOKENIZER.gguf FIXTURE_DIR\n");
        return 2;
    }
    char err[256];
    if (ds_model_load(argv[1], &model, err, sizeof err) != DS_OK) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    fixture = argv[2];
    gguf_path = argv[1];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode),         cmocka_unit_test(test_decode),
        cmocka_unit_test(test_pretokenize),    cmocka_unit_test(test_nfc),
        cmocka_unit_test(test_chat),           cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_bos_and_buffer), cmocka_unit_test(test_invalid_utf8),
        cmocka_unit_test(test_lossy),          cmocka_unit_test(test_random_bytes),
        cmocka_unit_test(test_damaged_files),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    ds_model_free(model);
    return rc;
}
