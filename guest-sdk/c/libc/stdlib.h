/* The part of <stdlib.h> the generated bindings use; weft_core.c defines
 * it (a Weft module links without libc). */
#ifndef WEFT_LIBC_STDLIB_H
#define WEFT_LIBC_STDLIB_H
#include <stddef.h>
void *malloc(size_t n);
void *calloc(size_t count, size_t size);
void *realloc(void *p, size_t n);
void free(void *p);
_Noreturn void abort(void);
#endif
