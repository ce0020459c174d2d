/* deepseek.h - CPU inference for the DeepSeek model family (V2, V2-Lite, V3, R1) from GGUF files.

   One header, one library. Everything a program needs is declared here; nothing else of the
   core is public.

   QUICK START

       char err[256];
       ds_model *m;
       if (ds_model_load("model.gguf", &m, err, sizeof err) != DS_OK) { puts(err); return 1; }
       ds_context_params p = ds_context_default_params();
       p.n_threads = 4;
       ds_context *ctx;
       if (ds_context_new(m, &p, &ctx, err, sizeof err) != DS_OK) { puts(err); return 1; }
       int32_t prompt[] = {0, 1544, 318};
       if (ds_eval(ctx, prompt, 3, 0) != DS_OK) puts(ds_context_error(ctx));
       const float *logits = ds_logits(ctx, 0);     // next-token logits, ds_model_n_vocab(m) floats
       ...
       ds_context_free(ctx);
       ds_model_free(m);

   MODEL FILES
   GGUF v3 (v2 accepted), architectures `deepseek2` (DeepSeek-V2, V2-Lite, Coder-V2, V3, R1, V3.1)
   and `deepseek32` (V3.2: DeepSeek Sparse Attention, computed as DeepSeek's code does, FP8
   indexer included) with llama.cpp's metadata keys and tensor names, so the files people
   download for llama.cpp load here. Both MLA layouts are accepted: the
   legacy fused `attn_kv_b` and the split `attn_k_b` + `attn_v_b`. The file is memory-mapped and
   weights are used in place: F32, F16, BF16 and ggml's block formats Q4_0, Q4_1, Q5_0, Q5_1,
   Q8_0, Q2_K..Q6_K, IQ4_NL, IQ4_XS, IQ2_XXS and IQ1_S (activations quantized per matmul input, as
   ggml does). Every count, length, type, shape and offset is validated before
   use; a malformed file yields DS_ERR_FORMAT and a message naming the file, the item and the
   byte offset, never a crash.

   CONTEXTS
   A context owns the KV cache (MLA latent only: kv_lora_rank + rope dims per token per layer;
   for deepseek32 also the indexer's keys, 128 FP8 codes and a scale per token per layer),
   the scratch memory and the worker threads. Several contexts may share one model. A context
   is not thread-safe: call it from one thread at a time.

   ds_eval appends tokens to the context's sequence: the first call evaluates the prompt as one
   batch, later calls typically one token each. With all_logits != 0 the logits of every token
   of the batch are kept (ds_logits(ctx, i), i < n_tokens); otherwise only the last one's
   (ds_logits(ctx, 0)). Results are bit-identical for every thread count.

   THREADS: a context's n_threads threads include the caller. Each job is cut into a few
   chunks per thread that any idle thread may take, so a thread the OS deschedules (a busy
   core, another context) holds up only its chunk; when one still makes the caller wait far
   longer than a chunk takes, the caller runs the next jobs alone for a while, then tries all
   threads again. Waiting threads spin about 10 us, then sleep. n_threads = 0 means the physical cores that this process's other live contexts have
   not taken (at least 1): two contexts made with 0 share the machine instead of
   oversubscribing it; give explicit counts to decide the split yourself. When built with
   OpenBLAS, creating a context sets OpenBLAS to one thread (process-wide): the workers call
   sgemm on fixed panels themselves.

   CACHE TYPES
   ds_context_params.cache_type stores the latent cache's rows as DS_TYPE_F32 (the default: the
   logits DeepSeek's code computes), F16 or BF16 (half the memory), or Q8_0 (ggml's 8-bit blocks,
   0.28x; rows zero-padded to whole blocks). On the default model the held-out perplexity moves by
   -0.01% (F16), -0.04% (BF16) and +0.05% (Q8_0); on the tiny random test models the logits move
   by up to 0.012 (F16), 0.35 (BF16) and 1.8 (Q8_0), so F32 stays the default.
   ds_context_cache_bytes says what the cache takes.

   MTP
   DeepSeek-V3 and R1 carry a multi-token-prediction (MTP) layer that guesses the token after
   next; it is the draft model of speculative decoding. A context made with params.mtp = 1
   keeps the final-normed hidden state of every token of the last ds_eval call (llama.cpp's
   blk.N.nextn.* convention: h is the input of the output head) and a cache for the MTP layer.
   ds_eval_mtp then combines each such token's state with the token that followed it:

       ds_eval(ctx, toks, n, 0);                       // toks[0..n) at positions p..p+n
       next = sample(ds_logits(ctx, 0));
       // rows i < n - 1 are followed by toks[i + 1], the last by next
       ds_eval_mtp(ctx, followers, n, 0);              // followers = toks[1..n) + next
       draft = argmax(ds_mtp_logits(ctx, 0));          // a guess of the token after next

   Run it after every ds_eval (the MTP layer attends to its own earlier positions, so none may
   be skipped). ds_context_rewind keeps both caches consistent.

   ERRORS: ONE CONVENTION
   Every function that can fail returns a ds_status (DS_OK is 0) and says why in one line:
     - functions that take (char *err, size_t err_size) write the message there (err may be
       NULL); results come back through out-parameters, set to NULL / 0 on failure;
     - a context's calls (ds_eval, ds_eval_mtp, ds_context_rewind) keep theirs in the context:
       ds_context_error(ctx);
     - a GGUF writer's metadata setters return the status too, and the first failure sticks:
       ds_gguf_writer_begin returns it with its message, so a caller may check once there.
   Functions that produce text into a caller's buffer write at most cap bytes including the
   NUL and give the full length, as snprintf does; when it did not fit, those that return a
   status return DS_ERR_SMALL_BUFFER with the length needed. Functions that cannot fail
   (accessors, lookups, ds_detokenize) return their value directly; a lookup's "absent" is
   NULL, -1 or 0, as each says. The library never prints and never exits.

   VERSION AND LINKING
   ds_version() is the library's version; the shared library is libdeepseek.so.0 and exports
   exactly what this header declares (DS_API). Build against it with
   `pkg-config --cflags --libs deepseek` (add --static to link libdeepseek.a).

   TEXT
   A file with tokenizer.ggml.* metadata (byte-level BPE, "gpt2") tokenizes exactly as Hugging
   Face's tokenizers does with the model's tokenizer.json: added tokens (chat markers, BOS, ...)
   are matched anywhere in the text, longest first; the rest is normalized (NFC) where that
   tokenizer.json does, split by the regexes of the pre-tokenizer named by tokenizer.ggml.pre
   (deepseek-v3, deepseek-llm, deepseek-coder, qwen2, llama-bpe and llama.cpp's other names for
   these; others are refused with a message naming the supported ones) and merged by rank.
   Decoding maps tokens back to bytes and replaces invalid UTF-8 as Hugging
   Face does; ds_detok does the same token by token for streaming. A file holding only a
   vocabulary (deepseek-convert --vocab-only) loads for tokenizing; it cannot make a context. A
   model without tokenizer.ggml.model, or with llama.cpp's "none" there, has no tokenizer: it
   runs on token ids.

       int32_t ids[64];
       int n;
       if (ds_tokenize(m, "Hello", 5, ds_model_add_bos(m), ids, 64, &n, err, sizeof err)) puts(err);

   Sampling: ds_sampler.

   CHAT
   ds_chat_apply renders messages with the model's chat template, and the text is then tokenized
   without adding BOS, since the template writes it. No Jinja engine: the template is recognised
   as one of DeepSeek's formats (ds_chat_style) and reproduced byte for byte: V3, R1 and V2 as
   their templates; V3.1 / V3.1-Terminus as DeepSeek's template; V3.2, which ships no template,
   as DeepSeek's encoder (encoding_dsv32.py) with its DSML tool calls. V3.1 and V3.2 are hybrid
   models: ds_chat_params.thinking picks thinking mode (the answer starts inside <think>) or chat
   mode, and ds_chat_has_thinking_switch says which styles have that choice. V3.2 also describes
   tools in the system prompt (ds_chat_params.tools). An assistant message's content carries its
   reasoning as the model wrote it, "reasoning</think>answer" (R1 and V3.1 drop it from earlier
   turns themselves; V3.2 keeps it only for the answer being built after the last user turn).
   ds_chat_render_ex and ds_chat_apply_ex take those parameters; ds_chat_render and ds_chat_apply
   are them with ds_chat_default_params() and add_generation_prompt as given.

   GGUF WRITING
   ds_gguf_writer streams a GGUF v3 file: set metadata, declare every tensor (name, type,
   shape), then write the tensors' bytes in declaration order. Only one tensor needs to be in
   memory at a time, which is how the converter handles checkpoints larger than memory.
*/
#ifndef DEEPSEEK_H
#define DEEPSEEK_H

#include <stddef.h>
#include <stdint.h>

/* What the shared library exports; everything else in it is hidden. */
#ifndef DS_API
#if defined(__GNUC__) || defined(__clang__)
#define DS_API __attribute__((visibility("default")))
#else
#define DS_API
#endif
#endif

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    DS_OK = 0,
    DS_ERR_IO,          /* a file could not be opened, read, mapped or written */
    DS_ERR_FORMAT,      /* the file is not valid GGUF, or not a model this library understands */
    DS_ERR_UNSUPPORTED, /* valid, but uses something not implemented (a tensor type, an architecture) */
    DS_ERR_NOMEM,
    DS_ERR_ARG,          /* a bad argument: token id out of range, empty batch, ... */
    DS_ERR_CONTEXT_FULL, /* the batch does not fit in the context's remaining positions */
    DS_ERR_SMALL_BUFFER  /* the caller's buffer is too small; the size needed was returned */
} ds_status;

/* A short name for a status ("ok", "invalid file", ...). */
DS_API const char *ds_status_name(ds_status s);
/* The library's version, "MAJOR.MINOR.PATCH" (meson's project version). */
DS_API const char *ds_version(void);

/* ---- tensor types: ggml's numbering, as stored in GGUF ---- */
/* clang-format off */
typedef enum {
    DS_TYPE_F32 = 0, DS_TYPE_F16 = 1, DS_TYPE_Q4_0 = 2, DS_TYPE_Q4_1 = 3, DS_TYPE_Q5_0 = 6,
    DS_TYPE_Q5_1 = 7, DS_TYPE_Q8_0 = 8, DS_TYPE_Q8_1 = 9, DS_TYPE_Q2_K = 10, DS_TYPE_Q3_K = 11,
    DS_TYPE_Q4_K = 12, DS_TYPE_Q5_K = 13, DS_TYPE_Q6_K = 14, DS_TYPE_Q8_K = 15,
    DS_TYPE_IQ2_XXS = 16, DS_TYPE_IQ2_XS = 17, DS_TYPE_IQ3_XXS = 18, DS_TYPE_IQ1_S = 19,
    DS_TYPE_IQ4_NL = 20, DS_TYPE_IQ3_S = 21, DS_TYPE_IQ2_S = 22, DS_TYPE_IQ4_XS = 23,
    DS_TYPE_I8 = 24, DS_TYPE_I16 = 25, DS_TYPE_I32 = 26, DS_TYPE_I64 = 27, DS_TYPE_F64 = 28,
    DS_TYPE_IQ1_M = 29, DS_TYPE_BF16 = 30, DS_TYPE_TQ1_0 = 34, DS_TYPE_TQ2_0 = 35,
    DS_TYPE_MXFP4 = 39,
    DS_TYPE_COUNT = 40
} ds_type;
/* clang-format on */

/* Name of a type ("F32", "Q4_K", ...), or NULL for an id ggml does not define. */
DS_API const char *ds_type_name(ds_type t);
/* Bytes of a row of n elements of type t; 0 if t is unknown or n is not a multiple of its block. */
DS_API size_t ds_type_row_size(ds_type t, int64_t n);

/* Exact conversions between float and the 16-bit formats (round to nearest even). */
DS_API uint16_t ds_fp32_to_fp16(float f);
DS_API float ds_fp16_to_fp32(uint16_t h);
DS_API uint16_t ds_fp32_to_bf16(float f);
DS_API float ds_bf16_to_fp32(uint16_t h);

/* ---- models ---- */
typedef struct ds_model ds_model;

typedef struct {
    int use_mmap;  /* 1: map the file and use the weights in place (default); 0: read it into memory */
    int use_mlock; /* 1: lock the weights in RAM so they are never paged out (needs ulimit -l) */
} ds_model_params;

DS_API ds_model_params ds_model_default_params(void); /* use_mmap 1, use_mlock 0 */
/* Load a GGUF model (or a vocabulary-only file) with the default parameters. */
DS_API ds_status ds_model_load(const char *path, ds_model **out, char *err, size_t err_size);
DS_API ds_status ds_model_load_params(const char *path, const ds_model_params *p, ds_model **out, char *err,
                                      size_t err_size);
DS_API void ds_model_free(ds_model *m);

DS_API int ds_model_n_vocab(const ds_model *m);
DS_API int ds_model_n_ctx_train(const ds_model *m); /* context_length from the file */
DS_API int ds_model_n_layer(const ds_model *m);     /* decoder layers used for the logits (MTP excluded) */
DS_API int ds_model_has_mtp(const ds_model *m);     /* the file has a multi-token-prediction layer (see MTP) */
/* Bytes of weights one decode step reads, on average: all of attention, the dense layers, the
   routers and the shared experts, n_expert_used of each MoE layer's routed experts, the head and
   one embedding row (the MTP layer excluded). Bandwidth = this x tokens per second. */
DS_API size_t ds_model_decode_bytes(const ds_model *m);
DS_API int ds_model_bos(const ds_model *m); /* -1 when the file names none */
DS_API int ds_model_eos(const ds_model *m);
/* The file's tokenizer.chat_template (NUL-terminated, owned by the model), or NULL. */
DS_API const char *ds_model_chat_template(const ds_model *m);
/* One line describing the model: architecture, sizes, MLA layout, routing. */
DS_API const char *ds_model_desc(const ds_model *m);

/* ---- text: tokenizer and detokenizer (see TEXT above) ---- */

/* Encode UTF-8 text. Added tokens (chat markers, BOS, ...) in the text are recognised, as
   Hugging Face does; BOS is prepended when add_bos != 0 and the model names one. *n_tokens gets the
   token count n (at most len + 1; 3 len + 1 for a tokenizer that normalizes with NFC, which can
   make text up to three times longer). At most cap ids are written: if n > cap, the call
   returns DS_ERR_SMALL_BUFFER; call again with n ids of room. Fails with a message when the
   model has no tokenizer or the text is not valid UTF-8 (ds_utf8_lossy repairs such text). */
DS_API ds_status ds_tokenize(const ds_model *m, const char *text, size_t len, int add_bos, int32_t *out, int cap,
                             int *n_tokens, char *err, size_t err_size);
/* The pieces the text is cut into before BPE (added tokens are pieces too; the others are of the
   normalized text), each passed to fn in order; for checking the pre-tokenizer stage on its own.
   Fails as ds_tokenize does. */
DS_API ds_status ds_pretokenize(const ds_model *m, const char *text, size_t len,
                                void (*fn)(const char *piece, size_t n, void *user), void *user, char *err,
                                size_t err_size);
/* Whether the file has tokenizer.ggml.add_bos_token set (DeepSeek's files do). */
DS_API int ds_model_add_bos(const ds_model *m);
/* Number of ids with a token string (0 when the file has no tokenizer). */
DS_API int ds_model_n_tokens(const ds_model *m);
/* The raw bytes of one token (byte-level symbols mapped back to bytes, added tokens' too; a token
   with a character outside the byte-level alphabet as its UTF-8 text), which need not be
   complete UTF-8. *len receives the length. NULL for an id without a token string. */
DS_API const char *ds_token_bytes(const ds_model *m, int32_t id, size_t *len);
/* The tokenizer.ggml.pre name this library gives a tokenizer.json's pre-tokenizer: its n regexes
   (each a Split with behavior Isolated, or \p{N} for Digits with individual_digits, in order, as
   the file spells them), whether its normalizer is NFC and its model ignore_merges. NULL when it
   is none this library implements (deepseek-convert writes this name). */
DS_API const char *ds_pre_tokenizer_name(const char *const *regex, int n, int nfc, int ignore_merges);
/* 1 for a control token (BOS, EOS, pad, ...): those are dropped when decoding with
   skip_special. Chat markers are not control tokens in DeepSeek's files. */
DS_API int ds_token_is_control(const ds_model *m, int32_t id);
/* 1 for a token that ends generation, as llama.cpp derives the set from a GGUF: the file's EOS,
   tokenizer.ggml.eot_token_id and eom_token_id, and the tokens of these texts: <|im_end|>,
   <|endoftext|> (Qwen), <|eot_id|>, <|eom_id|>, <|end_of_text|> (Llama 3), <｜end▁of▁sentence｜>
   (DeepSeek), <|EOT|> (DeepSeek Coder), <|end|>, <end_of_turn>, <EOT>, and Qwen's FIM tokens
   <|fim_pad|>, <|repo_name|>, <|file_sep|>. 0 for any other id, negative or out of range. */
DS_API int ds_token_is_eog(const ds_model *m, int32_t id);
/* Decode ids as Hugging Face does: the tokens' bytes concatenated, each maximal invalid UTF-8
   subpart replaced by U+FFFD. Returns the length of the text; writes at most cap bytes
   including a terminating NUL. */
DS_API size_t ds_detokenize(const ds_model *m, const int32_t *ids, int n, int skip_special, char *buf, size_t cap);

/* Streaming decoder: text token by token, never half a character. */
typedef struct ds_detok ds_detok;
DS_API ds_status ds_detok_new(const ds_model *m, int skip_special, ds_detok **out, char *err, size_t err_size);
/* Complete characters the token finishes (possibly ""); *len gets their length. The pointer is
   valid until the next call. Bytes that may still become a character are held back. */
DS_API const char *ds_detok_push(ds_detok *d, int32_t id, size_t *len);
/* End of stream: held-back bytes, each maximal invalid subpart as U+FFFD. */
DS_API const char *ds_detok_flush(ds_detok *d, size_t *len);
DS_API void ds_detok_free(ds_detok *d);

/* Copy in[0..n) to out replacing each maximal invalid UTF-8 subpart by U+FFFD; out needs room
   for 3 * n bytes. Returns the bytes written; *n_invalid (if not NULL) gets the replacements. */
DS_API size_t ds_utf8_lossy(const char *in, size_t n, char *out, size_t *n_invalid);

/* ---- chat templates ---- */

typedef struct {
    const char *type; /* "function" */
    const char *name;
    const char *arguments; /* JSON text */
} ds_tool_call;

typedef struct {
    const char *role;    /* "system", "user", "assistant" or "tool" (V3.2: also "developer") */
    const char *content; /* NULL: an assistant turn made only of tool calls */
    const ds_tool_call *tool_calls;
    int n_tool_calls;
} ds_chat_message;

/* The chat formats this library renders. A GGUF's tokenizer.chat_template (Jinja) is not
   interpreted: it is recognised as one of these, which are rendered byte for byte as the
   template (V3.2: DeepSeek's encoder; V4: llama.cpp's template) would be. */
typedef enum {
    DS_CHAT_UNKNOWN = 0,
    DS_CHAT_DEEPSEEK3,   /* DeepSeek-V3: <｜User｜>...<｜Assistant｜>..., tool calls */
    DS_CHAT_DEEPSEEK_R1, /* DeepSeek-R1: as V3, earlier answers' reasoning dropped, ends in <think>\n */
    DS_CHAT_DEEPSEEK2,   /* DeepSeek-V2 / V2-Lite chat: "User: ...\n\nAssistant: ..." */
    DS_CHAT_DEEPSEEK3_1, /* DeepSeek-V3.1 / V3.1-Terminus: <think> or </think> after <｜Assistant｜> */
    DS_CHAT_DEEPSEEK3_2, /* DeepSeek-V3.2: V3.1's markers, DSML tool calls, tools in the system prompt */
    DS_CHAT_DEEPSEEK_R1_DISTILL, /* DeepSeek-R1-Distill-Qwen / -Llama: V3's tool calls, the last system
                                    message only, R1's reasoning drop and <think>\n */
    DS_CHAT_DEEPSEEK_CODER,      /* DeepSeek Coder instruct (1.3B-33B): "### Instruction:" / "### Response:",
                                    <|EOT|>, a default system prompt */
    DS_CHAT_QWEN3,               /* Qwen3: <|im_start|>role ...<|im_end|>, reasoning kept after the last
                                    query, <tool_call> JSON, enable_thinking (ds_chat_params.thinking) */
    DS_CHAT_CHATML,              /* ChatML as llama.cpp writes it for a model without a template */
    DS_CHAT_DEEPSEEK4            /* DeepSeek-V4 (and V4-Flash-0731): llama.cpp's template, V3.1's markers,
                                    DSML tool calls in a tool_calls block, <tool_result> in the user turn,
                                    tools in the system prompt, <think> or </think> by thinking */
} ds_chat_style;

/* How to render: ds_chat_default_params() gives add_generation_prompt 1, thinking -1, tools NULL,
   style DS_CHAT_UNKNOWN. */
typedef struct {
    int add_generation_prompt; /* end with what opens the assistant's answer (V3.2's encoder always does) */
    int thinking;              /* the styles with a thinking switch: 1 thinking mode, 0 chat mode, -1 the
                                  template's default (chat mode for V3.1 / V3.2, thinking for Qwen3, whose
                                  enable_thinking is then left unset) */
    const char *tools;         /* V3.2 and Qwen3: JSON array of OpenAI-style tools, [{"type": "function",
                                  "function": {"name", "description", "parameters"}}], described in the
                                  system prompt (NULL or []: none); others ignore it */
    ds_chat_style style;       /* ds_chat_apply_ex: the format to render in place of the model's own
                                  template (DS_CHAT_UNKNOWN: the model's); ds_chat_render_ex ignores it */
} ds_chat_params;

DS_API ds_chat_params ds_chat_default_params(void);
DS_API ds_chat_style ds_chat_detect(const char *jinja_template); /* DS_CHAT_UNKNOWN for NULL */
DS_API const char *ds_chat_style_name(ds_chat_style s);
/* The style a name of ds_chat_style_name stands for; DS_CHAT_UNKNOWN for any other name. */
DS_API ds_chat_style ds_chat_style_from_name(const char *name);
/* The names of every style this library renders, in ds_chat_style order, NULL-terminated. */
DS_API const char *const *ds_chat_template_names(void);
/* 1 when the style's generation prompt leaves the model inside a <think> block with default
   params (R1 and its distills). V3.1 and V3.2 do so exactly when params.thinking is 1; Qwen3
   never does (its model opens <think> itself, or the prompt holds an empty one). */
DS_API int ds_chat_opens_think(ds_chat_style s);
/* 1 for the styles where ds_chat_params.thinking chooses thinking or chat mode (V3.1, V3.2, Qwen3). */
DS_API int ds_chat_has_thinking_switch(ds_chat_style s);
/* Render messages as the template does. bos/eos are the token strings the template inserts.
   *len gets the text's length; at most cap bytes are written including a terminating NUL
   (DS_ERR_SMALL_BUFFER when it did not fit: call again with *len + 1 bytes; buf may be NULL
   with cap 0 to ask). Roles the template does not know are skipped, as the template skips
   them (V3.2's encoder raises on them: refused); fails with DS_ERR_ARG where the template
   itself would fail (content NULL where it needs text) and with DS_ERR_UNSUPPORTED for
   DS_CHAT_UNKNOWN. */
DS_API ds_status ds_chat_render(ds_chat_style s, const char *bos, const char *eos, const ds_chat_message *msgs,
                                int n_msgs, int add_generation_prompt, char *buf, size_t cap, size_t *len, char *err,
                                size_t err_size);
/* ds_chat_render with params (NULL: the defaults). V3.2 also fails with DS_ERR_ARG where DeepSeek's
   encoder would write Python's None (a NULL user / tool content or tool-call name) and where
   a tool call's arguments or params->tools are not JSON as Python reads it. */
DS_API ds_status ds_chat_render_ex(ds_chat_style s, const char *bos, const char *eos, const ds_chat_message *msgs,
                                   int n_msgs, const ds_chat_params *params, char *buf, size_t cap, size_t *len,
                                   char *err, size_t err_size);
/* The style of the model's tokenizer.chat_template. */
DS_API ds_chat_style ds_model_chat_style(const ds_model *m);
/* ds_chat_render / ds_chat_render_ex with the model's style and BOS/EOS strings. */
DS_API ds_status ds_chat_apply(const ds_model *m, const ds_chat_message *msgs, int n_msgs, int add_generation_prompt,
                               char *buf, size_t cap, size_t *len, char *err, size_t err_size);
DS_API ds_status ds_chat_apply_ex(const ds_model *m, const ds_chat_message *msgs, int n_msgs,
                                  const ds_chat_params *params, char *buf, size_t cap, size_t *len, char *err,
                                  size_t err_size);

/* ---- sampling ---- */

typedef struct {
    float temp;           /* 0: greedy (argmax, first on ties) */
    int top_k;            /* keep the k most likely; 0: off */
    float top_p;          /* keep the smallest set with this much probability; 1: off */
    float min_p;          /* drop tokens below min_p * p(most likely); 0: off */
    float repeat_penalty; /* 1: off; >1 makes tokens of the recent history less likely */
    int repeat_last_n;    /* how many recent tokens the penalty looks at */
    uint64_t seed;        /* same seed, same logits: same choices */
} ds_sampler_params;

typedef struct ds_sampler ds_sampler;

/* DeepSeek's advice for R1: temp 0.6, top_p 0.95; top_k and min_p off; no penalty
   (repeat_last_n 64 for when it is turned on); seed 0. */
DS_API ds_sampler_params ds_sampler_default_params(void);
DS_API ds_status ds_sampler_new(const ds_sampler_params *p, int n_vocab, ds_sampler **out, char *err, size_t err_size);
DS_API void ds_sampler_free(ds_sampler *s);
/* Choose a token from n_vocab logits (not modified). */
DS_API int32_t ds_sampler_sample(ds_sampler *s, const float *logits);
/* Record a token in the history the repetition penalty looks at (prompt tokens too). */
DS_API void ds_sampler_accept(ds_sampler *s, int32_t token);
DS_API void ds_sampler_reset(ds_sampler *s); /* clear the history; the random state continues */

/* ---- contexts ---- */
typedef struct ds_context ds_context;

typedef struct {
    int n_ctx;      /* positions the KV cache holds; 0 = min(model context, 4096) */
    int n_threads;  /* threads including the caller; 0 = the physical cores other contexts leave (THREADS) */
    int n_batch;    /* most tokens evaluated together; larger batches are split; 0 = 512 */
    int mtp;        /* 1: keep what ds_eval_mtp needs (the model must have an MTP layer); 0 = off */
    int cache_type; /* the latent cache's rows: DS_TYPE_F32 (0, the default), F16, BF16 or Q8_0 (CACHE TYPES) */
} ds_context_params;

DS_API ds_context_params ds_context_default_params(void);
DS_API ds_status ds_context_new(ds_model *m, const ds_context_params *p, ds_context **out, char *err, size_t err_size);
DS_API void ds_context_free(ds_context *ctx);

/* Evaluate n_tokens tokens at the next positions. See CONTEXTS above. */
DS_API ds_status ds_eval(ds_context *ctx, const int32_t *tokens, int n_tokens, int all_logits);
/* One token for each of n contexts of one model, in one pass: the weights are read once for
   all of them, each token attends its own context's cache at that context's next position.
   Afterwards ds_logits(ctxs[i], 0) is sequence i's. The contexts must be distinct, of the same
   n_ctx and cache type, with MTP off and a free position each; ctxs[0]'s threads and buffers
   run the pass (n <= its n_batch), and errors are reported on it. Each sequence's logits are
   those ds_eval would give it alone, bit for bit while n < 32 (below that every matmul row is
   the same dot product; 32 rows and more may go through OpenBLAS's sgemm). */
DS_API ds_status ds_eval_seqs(ds_context *const *ctxs, const int32_t *tokens, int n);
/* Logits of token i of the last batch (n_vocab floats), or NULL if not kept. */
DS_API const float *ds_logits(const ds_context *ctx, int i);
DS_API int ds_context_n_past(const ds_context *ctx); /* positions filled */
/* Multi-token prediction (see MTP above): next[i] is the token that followed token i of the
   last ds_eval call (i < n <= that call's n_tokens); row i's logits predict the token after
   next[i]. Kept like ds_eval's: every row's with all_logits, else the last row's. */
DS_API ds_status ds_eval_mtp(ds_context *ctx, const int32_t *next, int n, int all_logits);
DS_API const float *ds_mtp_logits(const ds_context *ctx, int i);
DS_API int ds_context_n_ctx(const ds_context *ctx);
DS_API int ds_context_n_threads(const ds_context *ctx);
/* Bytes the context's latent cache takes: every layer's (and the MTP layer's), all n_ctx positions. */
DS_API size_t ds_context_cache_bytes(const ds_context *ctx);
DS_API void ds_context_reset(ds_context *ctx); /* forget the sequence; keep the memory */
/* Keep only the first n_past positions (0 <= n_past <= ds_context_n_past), e.g. to re-use a
   chat's common prefix. */
DS_API ds_status ds_context_rewind(ds_context *ctx, int n_past);
DS_API const char *ds_context_error(const ds_context *ctx);
/* The cache's first n positions as bytes, to keep (on disk, say) and give back to a context of
   the same model and cache_type and mtp setting later: ds_context_state_size(ctx, n) bytes (0
   for a bad n). ds_context_state_set replaces the context's sequence by the state's n positions
   (*n_out, may be NULL); it refuses bytes of another model, cache type or length. The caller
   keeps the positions' tokens itself. With MTP on, the MTP layer continues after them. */
DS_API size_t ds_context_state_size(const ds_context *ctx, int n);
DS_API ds_status ds_context_state_get(ds_context *ctx, int n, void *buf, size_t cap);
DS_API ds_status ds_context_state_set(ds_context *ctx, const void *buf, size_t len, int *n_out);

/* Physical cores of this machine (logical CPUs if unknown). */
DS_API int ds_physical_cores(void);
/* The kernel level chosen for this CPU at start-up: "scalar", "avx2", "avx512", "avx512vnni",
   "neon" or "dotprod" (DS_SIMD=... forces a lower one). */
DS_API const char *ds_simd_level(void);

/* ---- GGUF writing ---- */
typedef struct ds_gguf_writer ds_gguf_writer;

DS_API ds_status ds_gguf_writer_new(ds_gguf_writer **out, char *err, size_t err_size);
DS_API void ds_gguf_writer_free(ds_gguf_writer *w);

/* Metadata, written in the order set. Setting a key twice replaces its value. */
DS_API ds_status ds_gguf_set_str(ds_gguf_writer *w, const char *key, const char *val);
DS_API ds_status ds_gguf_set_u32(ds_gguf_writer *w, const char *key, uint32_t val);
DS_API ds_status ds_gguf_set_i32(ds_gguf_writer *w, const char *key, int32_t val);
DS_API ds_status ds_gguf_set_f32(ds_gguf_writer *w, const char *key, float val);
DS_API ds_status ds_gguf_set_bool(ds_gguf_writer *w, const char *key, int val);
DS_API ds_status ds_gguf_set_arr_str(ds_gguf_writer *w, const char *key, const char *const *vals, size_t n);
DS_API ds_status ds_gguf_set_arr_i32(ds_gguf_writer *w, const char *key, const int32_t *vals, size_t n);
DS_API ds_status ds_gguf_set_arr_f32(ds_gguf_writer *w, const char *key, const float *vals, size_t n);

/* Declare a tensor; ne[0] is the contiguous dimension (ggml order). */
DS_API ds_status ds_gguf_add_tensor(ds_gguf_writer *w, const char *name, ds_type type, int n_dims, const int64_t *ne);
/* Write header, metadata and tensor table to path. */
DS_API ds_status ds_gguf_writer_begin(ds_gguf_writer *w, const char *path, char *err, size_t err_size);
/* The next declared tensor's bytes, exactly ds_type_row_size(type, ne0) * rows. */
DS_API ds_status ds_gguf_writer_tensor(ds_gguf_writer *w, const void *data, size_t n_bytes, char *err, size_t err_size);
/* The same in pieces of any size: bytes continue the tensor being written, then the next
   declared one, so a tensor never has to be in memory whole. */
DS_API ds_status ds_gguf_writer_write(ds_gguf_writer *w, const void *data, size_t n_bytes, char *err, size_t err_size);
/* Checks every tensor was written, flushes and closes. */
DS_API ds_status ds_gguf_writer_finish(ds_gguf_writer *w, char *err, size_t err_size);

/* ---- GGUF reading: a file's metadata and tensors, validated as ds_model_load validates ---- */
typedef struct ds_gguf ds_gguf;

typedef struct {
    const char *name;
    ds_type type;
    int n_dims;
    int64_t ne[4];    /* ne[0] contiguous; unused dims are 1 */
    const void *data; /* in the file's mapping */
    size_t size;      /* bytes */
} ds_gguf_tensor_info;

DS_API ds_status ds_gguf_open(const char *path, ds_gguf **out, char *err, size_t err_size);
DS_API void ds_gguf_close(ds_gguf *g);
DS_API size_t ds_gguf_n_kv(const ds_gguf *g);
DS_API const char *ds_gguf_kv_key(const ds_gguf *g, size_t i);
/* A string value, or NULL when key is absent or not a string (the pointer is NUL-terminated
   only up to *len bytes: use the length). */
DS_API const char *ds_gguf_get_str(const ds_gguf *g, const char *key, size_t *len);
/* An integer value of any integer type (or bool); 0 when absent or not an integer. */
DS_API int ds_gguf_get_int(const ds_gguf *g, const char *key, int64_t *v);
/* Copy metadata entry i, whatever its type, into a writer (same key, same value). */
DS_API ds_status ds_gguf_copy_kv(ds_gguf_writer *w, const ds_gguf *g, size_t i);
DS_API size_t ds_gguf_n_tensors(const ds_gguf *g);
DS_API void ds_gguf_tensor(const ds_gguf *g, size_t i, ds_gguf_tensor_info *info);

#ifdef __cplusplus
}
#endif
#endif
