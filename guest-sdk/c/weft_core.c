/*
 * The parts of the C SDK both worlds share: the arena the module allocates
 * from (including the libc functions the generated bindings call), JSON
 * reading and writing, and outcomes.
 *
 * The module links without libc (`-nostdlib`): a Weft guest needs no
 * WASI, and a module that imports none cannot read a clock, the
 * environment or a file by accident. The few libc functions the bindings
 * use are defined here.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "weft.h"

/* ---- Arena ------------------------------------------------------------- */

/* Start of the free memory after the module's data and stack (set by
 * wasm-ld). */
extern unsigned char __heap_base;

static uintptr_t arena_next;
static uintptr_t arena_end;

#define PAGE 65536u

/* Every block carries its size just before it, so `realloc` can copy. */
typedef struct {
    size_t size;
    size_t pad; /* keeps blocks 16-byte aligned */
} block_header;

static void *arena_take(size_t n) {
    if (arena_next == 0) {
        arena_next = (uintptr_t)&__heap_base;
        arena_end = (uintptr_t)__builtin_wasm_memory_size(0) * PAGE;
    }
    uintptr_t start = (arena_next + 15u) & ~(uintptr_t)15u;
    size_t total = sizeof(block_header) + n;
    if (total < n) __builtin_trap();
    if (start + total > arena_end) {
        size_t missing = start + total - arena_end;
        size_t pages = (missing + PAGE - 1) / PAGE;
        if (__builtin_wasm_memory_grow(0, pages) == (size_t)-1) {
            /* Refused: the host's memory limit. Trap rather than return
             * NULL into bindings that do not check. */
            __builtin_trap();
        }
        arena_end += pages * PAGE;
    }
    block_header *h = (block_header *)start;
    h->size = n;
    arena_next = start + total;
    return h + 1;
}

void *malloc(size_t n) { return arena_take(n); }

void free(void *p) { (void)p; }

void *memcpy(void *dst, const void *src, size_t n) {
    unsigned char *d = dst;
    const unsigned char *s = src;
    while (n--) *d++ = *s++;
    return dst;
}

void *memset(void *dst, int c, size_t n) {
    unsigned char *d = dst;
    while (n--) *d++ = (unsigned char)c;
    return dst;
}

void *memmove(void *dst, const void *src, size_t n) {
    unsigned char *d = dst;
    const unsigned char *s = src;
    if (d < s) {
        while (n--) *d++ = *s++;
    } else {
        while (n--) d[n] = s[n];
    }
    return dst;
}

int memcmp(const void *a, const void *b, size_t n) {
    const unsigned char *x = a, *y = b;
    for (; n; n--, x++, y++) {
        if (*x != *y) return *x - *y;
    }
    return 0;
}

void *calloc(size_t count, size_t size) {
    size_t n = count * size;
    if (size && n / size != count) __builtin_trap();
    return memset(arena_take(n), 0, n);
}

void *realloc(void *p, size_t n) {
    if (p == NULL) return arena_take(n);
    size_t old = ((block_header *)p - 1)->size;
    if (n <= old) return p;
    return memcpy(arena_take(n), p, old);
}

size_t strlen(const char *s) {
    size_t n = 0;
    while (s[n]) n++;
    return n;
}

_Noreturn void abort(void) { __builtin_trap(); }

void *weft_alloc(size_t n) { return calloc(1, n); }

size_t weft_strlen(const char *s) { return strlen(s); }

char *weft_strndup(const char *s, size_t len) {
    char *out = arena_take(len + 1);
    memcpy(out, s, len);
    out[len] = 0;
    return out;
}

bool weft_streq(const char *a, const char *b) {
    if (a == NULL || b == NULL) return a == b;
    while (*a && *a == *b) a++, b++;
    return *a == *b;
}

/* ---- Reading JSON ------------------------------------------------------ */

typedef struct {
    const char *p;
    const char *end;
    unsigned depth;
} parser;

/* Deep enough for any real document, shallow enough for the stack. */
#define MAX_DEPTH 128

static void skip_ws(parser *ps) {
    while (ps->p < ps->end &&
           (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
        ps->p++;
}

static bool literal(parser *ps, const char *word) {
    size_t n = strlen(word);
    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0) return false;
    ps->p += n;
    return true;
}

static int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static bool hex4(parser *ps, uint32_t *out) {
    if (ps->end - ps->p < 4) return false;
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        int d = hex_digit(ps->p[i]);
        if (d < 0) return false;
        v = v * 16 + (uint32_t)d;
    }
    ps->p += 4;
    *out = v;
    return true;
}

static size_t put_utf8(char *out, uint32_t cp) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Parses a string whose opening quote is at `ps->p`; the decoded text is
 * never longer than the escaped one. */
static bool parse_string(parser *ps, const char **out, size_t *out_len) {
    ps->p++;
    const char *start = ps->p;
    while (ps->p < ps->end && *ps->p != '"') {
        if (*ps->p == '\\') ps->p++;
        ps->p++;
    }
    if (ps->p >= ps->end) return false;
    char *buf = arena_take((size_t)(ps->p - start) + 1);
    size_t n = 0;
    parser in = {start, ps->p, 0};
    while (in.p < in.end) {
        char c = *in.p++;
        if ((unsigned char)c < 0x20) return false;
        if (c != '\\') {
            buf[n++] = c;
            continue;
        }
        char e = *in.p++;
        switch (e) {
        case '"': buf[n++] = '"'; break;
        case '\\': buf[n++] = '\\'; break;
        case '/': buf[n++] = '/'; break;
        case 'b': buf[n++] = '\b'; break;
        case 'f': buf[n++] = '\f'; break;
        case 'n': buf[n++] = '\n'; break;
        case 'r': buf[n++] = '\r'; break;
        case 't': buf[n++] = '\t'; break;
        case 'u': {
            uint32_t cp;
            if (!hex4(&in, &cp)) return false;
            if (cp >= 0xD800 && cp < 0xDC00) {
                uint32_t low;
                if (in.end - in.p < 6 || in.p[0] != '\\' || in.p[1] != 'u') return false;
                in.p += 2;
                if (!hex4(&in, &low) || low < 0xDC00 || low > 0xDFFF) return false;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
            } else if (cp >= 0xDC00 && cp < 0xE000) {
                return false;
            }
            n += put_utf8(buf + n, cp);
            break;
        }
        default:
            return false;
        }
    }
    buf[n] = 0;
    ps->p++; /* the closing quote */
    *out = buf;
    *out_len = n;
    return true;
}

static bool digits(parser *ps) {
    const char *start = ps->p;
    while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') ps->p++;
    return ps->p > start;
}

static weft_json *parse_value(parser *ps);

/* Appends to a growing list of pointers (arrays and objects). */
static void push(void ***list, size_t *count, size_t *cap, void *item) {
    if (*count == *cap) {
        *cap = *cap ? *cap * 2 : 4;
        *list = realloc(*list, *cap * sizeof(void *));
    }
    (*list)[(*count)++] = item;
}

static weft_json *parse_container(parser *ps, bool object) {
    if (++ps->depth > MAX_DEPTH) return NULL;
    weft_json *v = weft_alloc(sizeof *v);
    v->kind = object ? WEFT_OBJECT : WEFT_ARRAY;
    size_t cap = 0, key_cap = 0, key_count = 0;
    char close = object ? '}' : ']';
    ps->p++;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == close) {
        ps->p++;
        ps->depth--;
        return v;
    }
    for (;;) {
        skip_ws(ps);
        if (object) {
            const char *key;
            size_t key_len;
            if (ps->p >= ps->end || *ps->p != '"' || !parse_string(ps, &key, &key_len))
                return NULL;
            push((void ***)&v->keys, &key_count, &key_cap, (void *)key);
            skip_ws(ps);
            if (ps->p >= ps->end || *ps->p != ':') return NULL;
            ps->p++;
        }
        weft_json *item = parse_value(ps);
        if (item == NULL) return NULL;
        push((void ***)&v->items, &v->count, &cap, item);
        skip_ws(ps);
        if (ps->p >= ps->end) return NULL;
        if (*ps->p == ',') {
            ps->p++;
            continue;
        }
        if (*ps->p != close) return NULL;
        ps->p++;
        ps->depth--;
        return v;
    }
}

static weft_json *parse_value(parser *ps) {
    skip_ws(ps);
    if (ps->p >= ps->end) return NULL;
    char c = *ps->p;
    if (c == '{' || c == '[') return parse_container(ps, c == '{');
    weft_json *v = weft_alloc(sizeof *v);
    if (c == '"') {
        v->kind = WEFT_STRING;
        return parse_string(ps, &v->string, &v->string_len) ? v : NULL;
    }
    if (literal(ps, "null")) return v;
    if (literal(ps, "true") || literal(ps, "false")) {
        v->kind = WEFT_BOOL;
        v->boolean = ps->p[-1] == 'e' && ps->p[-2] == 'u';
        return v;
    }
    const char *start = ps->p;
    if (*ps->p == '-') ps->p++;
    if (ps->p < ps->end && *ps->p == '0') {
        ps->p++;
    } else if (!digits(ps)) {
        return NULL;
    }
    if (ps->p < ps->end && *ps->p == '.') {
        ps->p++;
        if (!digits(ps)) return NULL;
    }
    if (ps->p < ps->end && (*ps->p == 'e' || *ps->p == 'E')) {
        ps->p++;
        if (ps->p < ps->end && (*ps->p == '+' || *ps->p == '-')) ps->p++;
        if (!digits(ps)) return NULL;
    }
    v->kind = WEFT_NUMBER;
    v->number = weft_strndup(start, (size_t)(ps->p - start));
    return v;
}

weft_json *weft_json_parse(const char *text, size_t len) {
    parser ps = {text, text + len, 0};
    weft_json *v = parse_value(&ps);
    skip_ws(&ps);
    return ps.p == ps.end ? v : NULL;
}

const weft_json *weft_get(const weft_json *obj, const char *key) {
    if (obj == NULL || obj->kind != WEFT_OBJECT) return NULL;
    for (size_t i = 0; i < obj->count; i++) {
        if (weft_streq(obj->keys[i], key)) return obj->items[i];
    }
    return NULL;
}

const weft_json *weft_at(const weft_json *array, size_t i) {
    if (array == NULL || array->kind != WEFT_ARRAY || i >= array->count) return NULL;
    return array->items[i];
}

size_t weft_len(const weft_json *v) {
    return v && (v->kind == WEFT_ARRAY || v->kind == WEFT_OBJECT) ? v->count : 0;
}

int64_t weft_int(const weft_json *v, int64_t fallback) {
    if (v == NULL || v->kind != WEFT_NUMBER) return fallback;
    const char *p = v->number;
    bool negative = *p == '-';
    if (negative) p++;
    uint64_t n = 0;
    for (; *p >= '0' && *p <= '9'; p++) n = n * 10 + (uint64_t)(*p - '0');
    /* An exponent scales the integer part (1e3 is 1000). */
    const char *e = p;
    while (*e && *e != 'e' && *e != 'E') e++;
    if (*e) {
        e++;
        bool down = *e == '-';
        if (*e == '+' || *e == '-') e++;
        int64_t exp = 0;
        for (; *e >= '0' && *e <= '9' && exp < 40; e++) exp = exp * 10 + (*e - '0');
        for (int64_t i = 0; i < exp; i++) n = down ? n / 10 : n * 10;
    }
    return negative ? -(int64_t)n : (int64_t)n;
}

const char *weft_str(const weft_json *v, const char *fallback) {
    return v && v->kind == WEFT_STRING ? v->string : fallback;
}

bool weft_bool(const weft_json *v, bool fallback) {
    return v && v->kind == WEFT_BOOL ? v->boolean : fallback;
}

/* ---- Writing JSON ------------------------------------------------------ */

static void put(weft_writer *w, const char *s, size_t n) {
    if (w->len + n + 1 > w->cap) {
        size_t cap = w->cap ? w->cap : 64;
        while (w->len + n + 1 > cap) cap *= 2;
        w->data = realloc(w->data, cap);
        w->cap = cap;
    }
    memcpy(w->data + w->len, s, n);
    w->len += n;
    w->data[w->len] = 0;
}

/* Before a value: a comma if a sibling came first (not after a key). */
static void before_value(weft_writer *w) {
    if (w->after_key) {
        w->after_key = false;
        return;
    }
    uint64_t bit = 1ull << (w->depth & 63);
    if (w->comma_bits & bit) put(w, ",", 1);
    w->comma_bits |= bit;
}

static void open_container(weft_writer *w, const char *c) {
    before_value(w);
    put(w, c, 1);
    w->depth++;
    w->comma_bits &= ~(1ull << (w->depth & 63));
}

static void close_container(weft_writer *w, const char *c) {
    put(w, c, 1);
    w->depth--;
}

void weft_begin_object(weft_writer *w) { open_container(w, "{"); }
void weft_end_object(weft_writer *w) { close_container(w, "}"); }
void weft_begin_array(weft_writer *w) { open_container(w, "["); }
void weft_end_array(weft_writer *w) { close_container(w, "]"); }

static void quoted(weft_writer *w, const char *s, size_t n) {
    static const char hex[] = "0123456789abcdef";
    put(w, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            put(w, esc, 2);
        } else if (c < 0x20) {
            char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            put(w, esc, 6);
        } else {
            put(w, (const char *)&c, 1);
        }
    }
    put(w, "\"", 1);
}

void weft_key(weft_writer *w, const char *key) {
    before_value(w);
    quoted(w, key, strlen(key));
    put(w, ":", 1);
    w->after_key = true;
}

void weft_string(weft_writer *w, const char *s) {
    before_value(w);
    quoted(w, s, strlen(s));
}

const char *weft_itoa(int64_t n) {
    char digits_buf[24];
    size_t i = sizeof digits_buf;
    uint64_t u = n < 0 ? (uint64_t)0 - (uint64_t)n : (uint64_t)n;
    do {
        digits_buf[--i] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (n < 0) digits_buf[--i] = '-';
    return weft_strndup(digits_buf + i, sizeof digits_buf - i);
}

void weft_int64(weft_writer *w, int64_t n) {
    before_value(w);
    const char *s = weft_itoa(n);
    put(w, s, strlen(s));
}

void weft_boolean(weft_writer *w, bool b) {
    before_value(w);
    put(w, b ? "true" : "false", b ? 4 : 5);
}

void weft_null(weft_writer *w) {
    before_value(w);
    put(w, "null", 4);
}

void weft_value(weft_writer *w, const weft_json *v) {
    if (v == NULL) {
        weft_null(w);
        return;
    }
    switch (v->kind) {
    case WEFT_NULL: weft_null(w); break;
    case WEFT_BOOL: weft_boolean(w, v->boolean); break;
    case WEFT_NUMBER:
        before_value(w);
        put(w, v->number, strlen(v->number));
        break;
    case WEFT_STRING:
        before_value(w);
        quoted(w, v->string, v->string_len);
        break;
    case WEFT_ARRAY:
        weft_begin_array(w);
        for (size_t i = 0; i < v->count; i++) weft_value(w, v->items[i]);
        weft_end_array(w);
        break;
    case WEFT_OBJECT:
        weft_begin_object(w);
        for (size_t i = 0; i < v->count; i++) {
            weft_key(w, v->keys[i]);
            weft_value(w, v->items[i]);
        }
        weft_end_object(w);
        break;
    }
}

const char *weft_text(weft_writer *w) {
    if (w->data == NULL) put(w, "", 0);
    return w->data;
}

void weft_field_string(weft_writer *w, const char *key, const char *s) {
    weft_key(w, key);
    weft_string(w, s);
}

void weft_field_int64(weft_writer *w, const char *key, int64_t n) {
    weft_key(w, key);
    weft_int64(w, n);
}

void weft_field_bool(weft_writer *w, const char *key, bool b) {
    weft_key(w, key);
    weft_boolean(w, b);
}

void weft_field_value(weft_writer *w, const char *key, const weft_json *v) {
    weft_key(w, key);
    weft_value(w, v);
}

/* ---- Outcomes ---------------------------------------------------------- */

weft_result weft_ok(const char *json_text) {
    size_t n = strlen(json_text);
    weft_json *value = weft_json_parse(json_text, n);
    if (value == NULL) {
        return weft_fail_permanent("invalid_output", "the result is not JSON");
    }
    weft_result r = {0};
    r.ok = true;
    r.text = weft_strndup(json_text, n);
    r.value = value;
    return r;
}

weft_result weft_fail(const char *code, const char *message) {
    weft_result r = {0};
    r.code = code;
    r.message = message;
    return r;
}

weft_result weft_fail_permanent(const char *code, const char *message) {
    weft_result r = weft_fail(code, message);
    r.details = "{\"retryable\":false}";
    return r;
}

const char *weft_concat(const char *first, ...) {
    weft_writer w = {0};
    va_list args;
    va_start(args, first);
    for (const char *s = first; s != NULL; s = va_arg(args, const char *)) put(&w, s, strlen(s));
    va_end(args);
    return weft_text(&w);
}
