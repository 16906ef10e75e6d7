// test_common.c — error codes and messages, checked size arithmetic, aligned
// allocation, half-precision conversion and the timed condition wait.
#include <math.h>

#include "am_common.h"
#include "am_test.h"

int main(void) {
    // errors: every code has a description; the last message is per thread
    const int codes[] = {AM_OK, AM_EINVAL, AM_ENOMEM, AM_EIO, AM_EFORMAT, AM_EAUDIO, AM_ERANGE, AM_EUNSUPPORTED,
                         AM_ECANCELED, AM_EFULL, AM_ETIMEDOUT, AM_EINTERNAL, AM_ESHUTDOWN};
    for (size_t i = 0; i < AM_ARRAY_LEN(codes); i++)
        CHECKF(strcmp(am_strerror(codes[i]), "unknown error") != 0, "code %d has no description", codes[i]);
    CHECK(strcmp(am_strerror(-999), "unknown error") == 0);
    CHECK(am_set_error(AM_EIO, "open %s: %d", "x", 7) == AM_EIO);
    CHECK(strcmp(am_last_error(), "open x: 7") == 0 && am_last_error_code() == AM_EIO);
    // checked arithmetic
    size_t out;
    CHECK(am_mul_size(1u << 20, 1u << 20, &out) == 0 && out == (size_t)1 << 40);
    CHECK(am_mul_size(SIZE_MAX / 2, 3, &out) == AM_ERANGE);
    CHECK(am_add_size(SIZE_MAX, 1, &out) == AM_ERANGE);
    CHECK(am_add_size(2, 3, &out) == 0 && out == 5);
    // aligned, zeroed allocation
    unsigned char *p = am_alloc(1000);
    CHECK(p && ((uintptr_t)p % 64) == 0);
    int zero = 1;
    for (int i = 0; i < 1000; i++) zero &= p[i] == 0;
    CHECK(zero);
    am_free(p);
    CHECK(am_alloc(SIZE_MAX - 10) == NULL);
    // half precision: every half converts to float and back unchanged
    int exact = 1;
    for (uint32_t h = 0; h < 65536; h++) {
        const float f = am_fp16_to_fp32((uint16_t)h);
        if (isnan(f)) exact &= (am_fp32_to_fp16(f) & 0x7c00) == 0x7c00 && (am_fp32_to_fp16(f) & 0x3ff);
        else exact &= am_fp32_to_fp16(f) == h;
    }
    CHECK(exact);
    CHECK(am_fp16_to_fp32(0x3c00) == 1.0f && am_fp16_to_fp32(0xc000) == -2.0f);
    CHECK(am_fp16_to_fp32(0x0001) == ldexpf(1.0f, -24)); // smallest subnormal
    CHECK(am_fp32_to_fp16(1e10f) == 0x7c00);             // overflow -> inf
    CHECK(am_fp32_to_fp16(1.0f + ldexpf(1.0f, -11)) == 0x3c00); // halfway: round to even
    CHECK(am_fp32_to_fp16(1.0f + 3 * ldexpf(1.0f, -11)) == 0x3c02);
    // timed wait returns after about the requested time
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
    pthread_mutex_lock(&mu);
    const double t0 = am_time_s();
    am_cond_wait_s(&cv, &mu, 0.05);
    const double dt = am_time_s() - t0;
    am_cond_wait_s(&cv, &mu, 0); // returns at once
    pthread_mutex_unlock(&mu);
    CHECKF(dt >= 0.04 && dt < 5.0, "timed wait took %.3f s", dt);
    return am_test_finish("test_common", 1);
}
