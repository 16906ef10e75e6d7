// alloc_inject.h — allocation-failure injection for tests/alloc/test_alloc.c.
//
// The test executable is linked with
//   -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=strdup,--wrap=strndup,
//   --wrap=aligned_alloc,--wrap=posix_memalign,--wrap=mmap,--wrap=munmap,--wrap=free, ...
// so that every call the project's own objects (amcore, and this test) make to
// those functions goes through alloc_inject.c. Allocations made inside shared
// libraries (OpenBLAS, FFTW, libav*, libmicrohttpd, cJSON, PCRE2, libc itself)
// call the real functions and are never counted nor failed. A second class of
// wrapped calls are the library entry points our code calls that allocate and
// report failure by their return value (cJSON_Create*/Add*ToObject/Print*/Parse*,
// pcre2_compile/match_data_create/jit_compile/match, fftw_malloc/fftw_plan_*,
// av_malloc*/av_frame_alloc/av_packet_alloc/avcodec_alloc_context3/
// avformat_alloc_context/avio_alloc_context/swr_alloc_set_opts2,
// MHD_start_daemon/MHD_create_response_from_buffer/MHD_create_post_processor,
// pthread_create): failing one of those simulates the library running out of
// memory inside (it returns what it returns then: NULL, an error code).
//
// Injection: a countdown. alloc_inject_arm(n, sticky) makes the n-th counted
// call from now fail (and, when sticky, every later one). Counted calls are
// those of the enabled classes (ALLOC_CLASS_LIBC, ALLOC_CLASS_LIB) on any thread.
//
// Leak tracking: every block returned by a wrapped libc allocator is recorded
// (address, sequence number, caller) until it is freed through the wrapped
// free/realloc/munmap; alloc_inject_leaks(mark) lists the blocks allocated after
// `mark` (alloc_inject_seq()) that are still live.
#ifndef ALLOC_INJECT_H
#define ALLOC_INJECT_H

#include <stddef.h>

enum { ALLOC_CLASS_LIBC = 1, ALLOC_CLASS_LIB = 2 };

// Which classes are counted (and may fail). Default ALLOC_CLASS_LIBC | ALLOC_CLASS_LIB.
void alloc_inject_classes(int mask);
// Start counting from zero; fail the n-th counted call (n >= 1; 0 = count only).
void alloc_inject_arm(long n, int sticky);
// Stop failing (counting goes on); returns the calls counted since arm.
long alloc_inject_disarm(void);
// Calls counted since the last arm, and failures injected since then.
long alloc_inject_count(void);
long alloc_inject_fired(void);
// Name of the function whose call failed first since the last arm ("" when none).
const char *alloc_inject_first_failed(void);
// Where that call was made (function, file:line when symbols are at hand).
void alloc_inject_first_caller(char *out, size_t cap);

// Tracking: the sequence number of the latest tracked allocation.
unsigned long alloc_inject_seq(void);
// Tracked blocks still live that were allocated after `mark`; prints up to
// `print` of them (size, function, caller address) on stderr with `label`.
long alloc_inject_leaks(unsigned long mark, int print, const char *label);
// 1 when a block freed inside a library (by the real free) is known to be gone
// (under ASan); else such a block looks leaked to alloc_inject_leaks.
int alloc_inject_sees_library_frees(void);
// Blocks currently tracked.
long alloc_inject_live(void);
// Record new blocks (1, the default) or not (0: fixtures made in the middle of a path).
void alloc_inject_track(int on);

#endif // ALLOC_INJECT_H
