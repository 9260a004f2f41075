/*
 * The RPC half of the C SDK: the `handle` export, over the bindings
 * `wit-bindgen c --world rpc` generates (rpc.h). The module defines
 * `weft_handle`.
 */
#include "rpc.h"
#include "weft.h"

static const char *c_str(const rpc_string_t *s) {
    return weft_strndup((const char *)s->ptr, s->len);
}

static rpc_string_t wit_str(const char *s) {
    rpc_string_t out = {(uint8_t *)s, weft_strlen(s)};
    return out;
}

bool exports_rpc_handle(rpc_string_t *function, rpc_json_t *input, rpc_call_info_t *call,
                        rpc_json_t *ret, rpc_error_t *err) {
    weft_json *parsed = weft_json_parse((const char *)input->ptr, input->len);
    weft_result r;
    if (parsed == NULL) {
        r = weft_fail_permanent("invalid_input", "the RPC input is not JSON");
    } else {
        weft_call info = {
            .idempotency_key = c_str(&call->idempotency_key),
            .run_id = c_str(&call->run_id),
            .step_name = c_str(&call->step_name),
            .attempt = call->attempt,
        };
        r = weft_handle(c_str(function), parsed, &info);
    }
    if (r.ok) {
        *ret = wit_str(r.text);
        return true;
    }
    err->code = wit_str(r.code ? r.code : "error");
    err->message = wit_str(r.message ? r.message : "");
    err->details.is_some = r.details != NULL;
    if (r.details) err->details.val = wit_str(r.details);
    return false;
}
