/* The part of <string.h> the generated bindings use; weft_core.c defines
 * it (a Weft module links without libc). */
#ifndef WEFT_LIBC_STRING_H
#define WEFT_LIBC_STRING_H
#include <stddef.h>
void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
#endif
