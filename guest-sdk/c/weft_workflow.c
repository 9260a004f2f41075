/*
 * The workflow half of the C SDK: the `run` export and the step calls, over
 * the bindings `wit-bindgen c --world workflow` generates (workflow.h).
 */
#include "weft.h"
#include "workflow.h"

static workflow_string_t wit_str(const char *s) {
    workflow_string_t out = {(uint8_t *)s, weft_strlen(s)};
    return out;
}

static const char *c_str(const workflow_string_t *s) {
    return weft_strndup((const char *)s->ptr, s->len);
}

/* ---- Step names -------------------------------------------------------- */

typedef struct {
    const char *name;
    unsigned count;
} name_use;

static name_use *names_used;
static size_t names_count, names_cap;

/* Repeats of a step name get `#2`, `#3`, ..., as in the other SDKs. */
static const char *unique(const char *name) {
    for (size_t i = 0; i < names_count; i++) {
        if (weft_streq(names_used[i].name, name)) {
            unsigned n = ++names_used[i].count;
            return weft_concat(name, "#", weft_itoa(n), NULL);
        }
    }
    if (names_count == names_cap) {
        size_t cap = names_cap ? names_cap * 2 : 16;
        name_use *grown = weft_alloc(cap * sizeof *grown);
        for (size_t i = 0; i < names_count; i++) grown[i] = names_used[i];
        names_used = grown;
        names_cap = cap;
    }
    names_used[names_count].name = name;
    names_used[names_count].count = 1;
    names_count++;
    return name;
}

/* ---- Outcomes across the boundary -------------------------------------- */

static weft_result from_wit_ok(const workflow_string_t *json) {
    return weft_ok(c_str(json));
}

static weft_result from_wit_error(const weft_workflow_types_error_t *e) {
    weft_result r = weft_fail(c_str(&e->code), c_str(&e->message));
    if (e->details.is_some) r.details = c_str(&e->details.val);
    return r;
}

static weft_workflow_types_error_t to_wit_error(const weft_result *r) {
    weft_workflow_types_error_t e = {0};
    e.code = wit_str(r->code ? r->code : "error");
    e.message = wit_str(r->message ? r->message : "");
    if (r->details) {
        e.details.is_some = true;
        e.details.val = wit_str(r->details);
    }
    return e;
}

static weft_workflow_types_step_options_t options(const weft_retry *retry) {
    weft_workflow_types_step_options_t o = {0};
    if (retry) {
        o.retry.is_some = true;
        o.retry.val.max_attempts = retry->max_attempts;
        o.retry.val.initial_delay_ms = retry->initial_delay_ms;
        o.retry.val.backoff_factor = retry->backoff_factor;
        o.retry.val.max_delay_ms = retry->max_delay_ms;
        o.retry.val.jitter = retry->jitter;
    }
    return o;
}

/* ---- The export -------------------------------------------------------- */

bool exports_workflow_run(workflow_json_t *input, workflow_json_t *ret, workflow_error_t *err) {
    weft_json *parsed = weft_json_parse((const char *)input->ptr, input->len);
    weft_result r;
    if (parsed == NULL) {
        r = weft_fail_permanent("invalid_input", "the workflow input is not JSON");
    } else {
        r = weft_workflow(parsed);
    }
    if (r.ok) {
        *ret = wit_str(r.text);
        return true;
    }
    *err = to_wit_error(&r);
    return false;
}

/* ---- Steps ------------------------------------------------------------- */

weft_result weft_rpc(const char *step, const char *rpc, const char *input_json,
                     const weft_retry *retry) {
    workflow_string_t name = wit_str(unique(step)), target = wit_str(rpc), input = wit_str(input_json);
    weft_workflow_types_step_options_t opts = options(retry);
    workflow_string_t out;
    weft_workflow_types_error_t e;
    if (weft_workflow_steps_call_rpc(&name, &target, &input, &opts, &out, &e)) {
        return from_wit_ok(&out);
    }
    return from_wit_error(&e);
}

weft_result weft_step(const char *step, weft_step_body body, void *arg, const weft_retry *retry) {
    workflow_string_t name = wit_str(unique(step));
    weft_workflow_types_step_options_t opts = options(retry);
    weft_workflow_steps_inline_start_t answer;
    weft_workflow_steps_begin_step(&name, &opts, &answer);
    while (answer.tag == WEFT_WORKFLOW_STEPS_INLINE_START_EXECUTE) {
        weft_result r = body(answer.val.execute, arg);
        weft_workflow_steps_result_json_error_t outcome = {0};
        if (r.ok) {
            outcome.val.ok = wit_str(r.text);
        } else {
            outcome.is_err = true;
            outcome.val.err = to_wit_error(&r);
        }
        weft_workflow_steps_complete_step(&name, &outcome, &answer);
    }
    const weft_workflow_steps_result_json_error_t *recorded = &answer.val.recorded;
    return recorded->is_err ? from_wit_error(&recorded->val.err) : from_wit_ok(&recorded->val.ok);
}

void weft_sleep(const char *step, uint64_t ms) {
    workflow_string_t name = wit_str(unique(step));
    weft_workflow_steps_sleep(&name, ms);
}

weft_result weft_wait_event(const char *step, const char *event, int64_t timeout_ms) {
    workflow_string_t name = wit_str(unique(step)), event_name = wit_str(event);
    uint64_t timeout = timeout_ms < 0 ? 0 : (uint64_t)timeout_ms;
    workflow_string_t out;
    weft_workflow_types_error_t e;
    if (weft_workflow_steps_wait_event(&name, &event_name, timeout_ms < 0 ? NULL : &timeout, &out, &e)) {
        return from_wit_ok(&out);
    }
    return from_wit_error(&e);
}

void weft_log(weft_level level, const char *message) {
    workflow_string_t text = wit_str(message);
    weft_workflow_steps_log((weft_workflow_steps_log_level_t)level, &text);
}
