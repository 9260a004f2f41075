/*
 * weft.h — durable Weft workflows in C.
 *
 * The same shape as the Rust, JavaScript and Python SDKs: a workflow is a
 * function of a JSON input; every effect is a step (an RPC, an inline block,
 * a durable sleep, a wait for an event) whose outcome the host records and
 * hands back on replay. Between steps the code must be deterministic, which
 * C makes easy: without libc there is no clock, randomness or file to read.
 *
 *     #include "weft.h"
 *
 *     weft_result weft_workflow(const weft_json *input) {
 *         weft_result total = weft_rpc("total", "prices/total", "{\"sku\":\"book\"}", NULL);
 *         if (!total.ok) return total;      // the RPC's error ends the run
 *         weft_sleep("cool-off", 5000);
 *         return weft_ok(total.text);
 *     }
 *
 * The module is built freestanding (no libc, no WASI imports) with the
 * bindings `wit-bindgen c` generates from wit/weft.wit: see
 * scripts/build-c-guest and docs/languages.md. Memory comes from a bump
 * arena that lives as long as the instance, which is one activation: the
 * SDK never frees, and nothing needs to.
 *
 * Strings are NUL-terminated UTF-8 throughout. Values returned by the SDK
 * live until the activation ends.
 */
#ifndef WEFT_H
#define WEFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- Memory ----------------------------------------------------------- */

/* `n` bytes from the activation's arena, zeroed; traps when memory is
 * exhausted (the host reports `memory_limit`). */
void *weft_alloc(size_t n);
/* A copy of `len` bytes of `s`, NUL-terminated. */
char *weft_strndup(const char *s, size_t len);
size_t weft_strlen(const char *s);
bool weft_streq(const char *a, const char *b);

/* ---- Reading JSON ------------------------------------------------------ */

typedef enum {
    WEFT_NULL,
    WEFT_BOOL,
    WEFT_NUMBER,
    WEFT_STRING,
    WEFT_ARRAY,
    WEFT_OBJECT,
} weft_kind;

typedef struct weft_json {
    weft_kind kind;
    bool boolean;
    /* WEFT_NUMBER: the literal as written (kept for exact re-encoding). */
    const char *number;
    /* WEFT_STRING: the decoded text. */
    const char *string;
    size_t string_len;
    /* WEFT_ARRAY and WEFT_OBJECT: `count` items; objects also have keys. */
    struct weft_json **items;
    const char **keys;
    size_t count;
} weft_json;

/* Parses `len` bytes of JSON text; NULL if it is not exactly one value. */
weft_json *weft_json_parse(const char *text, size_t len);
/* The member `key` of an object, or NULL (also when `obj` is no object). */
const weft_json *weft_get(const weft_json *obj, const char *key);
/* Item `i` of an array, or NULL. */
const weft_json *weft_at(const weft_json *array, size_t i);
/* Item count of an array or object; 0 for anything else (NULL included). */
size_t weft_len(const weft_json *v);
/* The number as an integer (fraction dropped), or `fallback` when `v` is
 * missing or no number. */
int64_t weft_int(const weft_json *v, int64_t fallback);
/* The string, or `fallback` when `v` is missing or no string. */
const char *weft_str(const weft_json *v, const char *fallback);
/* The boolean, or `fallback` when `v` is missing or no boolean. */
bool weft_bool(const weft_json *v, bool fallback);

/* ---- Writing JSON ------------------------------------------------------ */

/* A JSON text under construction; commas are placed for you. Start from
 * `weft_writer w = {0};`. */
typedef struct weft_writer {
    char *data;
    size_t len;
    size_t cap;
    /* Per nesting level: whether the next value needs a comma first. */
    uint64_t comma_bits;
    unsigned depth;
    bool after_key;
} weft_writer;

void weft_begin_object(weft_writer *w);
void weft_end_object(weft_writer *w);
void weft_begin_array(weft_writer *w);
void weft_end_array(weft_writer *w);
void weft_key(weft_writer *w, const char *key);
void weft_string(weft_writer *w, const char *s);
void weft_int64(weft_writer *w, int64_t n);
void weft_boolean(weft_writer *w, bool b);
void weft_null(weft_writer *w);
/* Writes a parsed value back out (numbers as they were written). */
void weft_value(weft_writer *w, const weft_json *v);
/* The text so far, NUL-terminated. */
const char *weft_text(weft_writer *w);

/* Shorthands for an object member. */
void weft_field_string(weft_writer *w, const char *key, const char *s);
void weft_field_int64(weft_writer *w, const char *key, int64_t n);
void weft_field_bool(weft_writer *w, const char *key, bool b);
void weft_field_value(weft_writer *w, const char *key, const weft_json *v);

/* ---- Outcomes ---------------------------------------------------------- */

/* A step's or the workflow's outcome: a JSON value, or an error with a
 * machine-readable code. */
typedef struct weft_result {
    bool ok;
    /* ok: the value as JSON text, and parsed. */
    const char *text;
    const weft_json *value;
    /* !ok: the error. `details` is JSON text or NULL. */
    const char *code;
    const char *message;
    const char *details;
} weft_result;

/* Success with `json_text` (copied and checked: text that is not JSON
 * becomes an `invalid_output` error). */
weft_result weft_ok(const char *json_text);
/* A failure the host may retry (an inline step's or RPC's attempt). */
weft_result weft_fail(const char *code, const char *message);
/* A failure not worth retrying (`details` gets `"retryable": false`). */
weft_result weft_fail_permanent(const char *code, const char *message);

/* How a failing step is retried; NULL options take the host's defaults. */
typedef struct weft_retry {
    uint32_t max_attempts;
    uint64_t initial_delay_ms;
    double backoff_factor;
    uint64_t max_delay_ms;
    double jitter;
} weft_retry;

/* ---- Workflows --------------------------------------------------------- */

/* Defined by the workflow: its body. Returns the run's output or error. */
weft_result weft_workflow(const weft_json *input);

/* Step names must be unique in a run: the SDK names repeats `name#2`,
 * `name#3`, ... as the other SDKs do. */

/* Calls RPC `module/function` with `input_json`. */
weft_result weft_rpc(const char *step, const char *rpc, const char *input_json,
                     const weft_retry *retry);

/* An inline step: `body(attempt, arg)` runs until the host records its
 * outcome (once per attempt, attempts from 1); on replay the recorded
 * outcome is returned without calling it. */
typedef weft_result (*weft_step_body)(uint32_t attempt, void *arg);
weft_result weft_step(const char *step, weft_step_body body, void *arg,
                      const weft_retry *retry);

/* Sleeps durably for `ms` milliseconds. */
void weft_sleep(const char *step, uint64_t ms);

/* Waits for the next event `event` sent to this run; `timeout_ms` < 0
 * waits for ever. A timeout is the error `timeout`. */
weft_result weft_wait_event(const char *step, const char *event, int64_t timeout_ms);

/* The run's logs. */
typedef enum { WEFT_TRACE, WEFT_DEBUG, WEFT_INFO, WEFT_WARN, WEFT_ERROR } weft_level;
void weft_log(weft_level level, const char *message);

/* Joins NULL-terminated strings into one (for log lines and messages). */
const char *weft_concat(const char *first, ...);
/* `n` in decimal. */
const char *weft_itoa(int64_t n);

/* ---- RPC modules ------------------------------------------------------- */

/* What the host tells an RPC function about the call. */
typedef struct weft_call {
    const char *idempotency_key;
    const char *run_id;
    const char *step_name;
    uint32_t attempt;
} weft_call;

/* Defined by an RPC module: answers `function` (NULL-terminated name). An
 * unknown function should be `weft_fail_permanent("unknown_function", ...)`. */
weft_result weft_handle(const char *function, const weft_json *input, const weft_call *call);

#endif
