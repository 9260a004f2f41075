/*
 * The smallest useful workflow, in C: one inline step that builds a
 * greeting.
 *
 *     {"name": "Ada"} → {"greeting": "Hello, Ada!"}
 */
#include "weft.h"

static weft_result greet(uint32_t attempt, void *arg) {
    (void)attempt;
    const char *name = arg;
    weft_writer w = {0};
    weft_string(&w, weft_concat("Hello, ", name, "!", NULL));
    return weft_ok(weft_text(&w));
}

weft_result weft_workflow(const weft_json *input) {
    const char *name = weft_str(weft_get(input, "name"), "world");
    weft_result greeting = weft_step("greet", greet, (void *)name, NULL);
    if (!greeting.ok) return greeting;
    weft_log(WEFT_INFO, weft_str(greeting.value, ""));

    weft_writer out = {0};
    weft_begin_object(&out);
    weft_field_value(&out, "greeting", greeting.value);
    weft_end_object(&out);
    return weft_ok(weft_text(&out));
}
