// am_mel.c — batched log-mel spectrogram (FFTW, double precision).
#include "am_mel.h"

#include <fftw3.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "am_common.h"

// FFTW's planner is not thread-safe; plans are made under this lock (its
// execute-with-new-arrays calls are thread-safe and need no lock).
static pthread_mutex_t plan_lock = PTHREAD_MUTEX_INITIALIZER;

struct am_mel {
    int n_mels;
    double *filters;   // (n_mels, 201)
    int *f_lo, *f_hi;  // nonzero bin range of each filter row
    double window[AM_MEL_N_FFT];
    double *frame;     // (400,)   fftw-aligned
    fftw_complex *spec; // (201,)
    double *power;     // (201,)
    fftw_plan plan;
};

// ---------------------------------------------------------------- lifecycle
am_mel *am_mel_create(const float *filters, int n_mels) {
    am_mel *m = NULL;
    if (!filters || n_mels <= 0 || n_mels > 512) {
        am_set_error(AM_EINVAL, "invalid mel filterbank");
        return NULL;
    }
    if (!(m = calloc(1, sizeof *m))) goto oom;
    m->n_mels = n_mels;
    m->filters = malloc((size_t)n_mels * AM_MEL_N_BINS * sizeof *m->filters);
    m->f_lo = malloc((size_t)n_mels * sizeof *m->f_lo);
    m->f_hi = malloc((size_t)n_mels * sizeof *m->f_hi);
    m->frame = fftw_malloc(AM_MEL_N_FFT * sizeof *m->frame);
    m->spec = fftw_malloc(AM_MEL_N_BINS * sizeof *m->spec);
    m->power = malloc(AM_MEL_N_BINS * sizeof *m->power);
    if (!m->filters || !m->f_lo || !m->f_hi || !m->frame || !m->spec || !m->power) goto oom;
    for (int i = 0; i < n_mels; i++) {
        int lo = AM_MEL_N_BINS, hi = 0;
        for (int j = 0; j < AM_MEL_N_BINS; j++) {
            const double f = filters[(size_t)i * AM_MEL_N_BINS + j];
            m->filters[(size_t)i * AM_MEL_N_BINS + j] = f;
            if (f != 0) {
                if (j < lo) lo = j;
                hi = j + 1;
            }
        }
        m->f_lo[i] = lo < hi ? lo : 0;
        m->f_hi[i] = hi;
    }
    // periodic Hann: w[n] = 0.5 - 0.5 cos(2 pi n / N)
    for (int n = 0; n < AM_MEL_N_FFT; n++) m->window[n] = 0.5 - 0.5 * cos(2.0 * M_PI * n / AM_MEL_N_FFT);
    pthread_mutex_lock(&plan_lock);
    m->plan = fftw_plan_dft_r2c_1d(AM_MEL_N_FFT, m->frame, m->spec, FFTW_ESTIMATE);
    pthread_mutex_unlock(&plan_lock);
    if (!m->plan) {
        am_set_error(AM_EINTERNAL, "FFTW could not plan a %d-point transform", AM_MEL_N_FFT);
        goto fail;
    }
    return m;
oom:
    am_set_error(AM_ENOMEM, "out of memory creating mel context");
fail:
    am_mel_free(m);
    return NULL;
}

void am_mel_free(am_mel *m) {
    if (!m) return;
    if (m->plan) {
        pthread_mutex_lock(&plan_lock);
        fftw_destroy_plan(m->plan);
        pthread_mutex_unlock(&plan_lock);
    }
    free(m->filters);
    free(m->f_lo);
    free(m->f_hi);
    fftw_free(m->frame);
    fftw_free(m->spec);
    free(m->power);
    free(m);
}

void am_mel_free_result(am_mel_result *r) {
    if (!r) return;
    free(r->data);
    memset(r, 0, sizeof *r);
}

// ---------------------------------------------------------------- compute
// Sample i of the zero-padded clip (n real samples then 480000 zeros, total L).
static inline double padded_sample(const float *x, size_t n, long i) { return (i >= 0 && (size_t)i < n) ? x[i] : 0.0; }

// Sample at index t of the reflect-padded signal (pad 200 each side of L).
static inline double reflect_sample(const float *x, size_t n, long L, long t) {
    long i = t - AM_MEL_N_FFT / 2;
    if (i < 0) i = -i;
    if (i >= L) i = 2 * (L - 1) - i;
    return padded_sample(x, n, i);
}

static int compute_one(am_mel *m, const float *x, size_t n, am_mel_result *out) {
    const int n_mels = m->n_mels;
    if ((uint64_t)n > (uint64_t)INT32_MAX * AM_MEL_HOP / 2)
        return am_set_error(AM_ERANGE, "audio too long for the mel spectrogram (%zu samples)", n);
    const long L = (long)n + AM_MEL_PAD_SAMPLES;
    const int n_frames = (int)(L / AM_MEL_HOP); // 1 + L/hop frames, the last one dropped
    float *mel = malloc((size_t)n_mels * (size_t)n_frames * sizeof *mel);
    if (!mel) return am_set_error(AM_ENOMEM, "out of memory for a %d-frame mel spectrogram", n_frames);
    double mx = -INFINITY;
    for (int t = 0; t < n_frames; t++) {
        const long start = (long)t * AM_MEL_HOP; // in reflect-padded coordinates
        const int interior = start - AM_MEL_N_FFT / 2 >= 0 && start - AM_MEL_N_FFT / 2 + AM_MEL_N_FFT <= (long)n;
        if (interior) {
            const float *src = x + start - AM_MEL_N_FFT / 2;
            for (int k = 0; k < AM_MEL_N_FFT; k++) m->frame[k] = src[k] * m->window[k];
        } else {
            for (int k = 0; k < AM_MEL_N_FFT; k++) m->frame[k] = reflect_sample(x, n, L, start + k) * m->window[k];
        }
        fftw_execute_dft_r2c(m->plan, m->frame, m->spec);
        for (int j = 0; j < AM_MEL_N_BINS; j++) m->power[j] = m->spec[j][0] * m->spec[j][0] + m->spec[j][1] * m->spec[j][1];
        for (int i = 0; i < n_mels; i++) {
            const double *f = m->filters + (size_t)i * AM_MEL_N_BINS;
            double s = 0;
            for (int j = m->f_lo[i]; j < m->f_hi[i]; j++) s += f[j] * m->power[j];
            const double v = log10(s > 1e-10 ? s : 1e-10);
            if (v > mx) mx = v;
            mel[(size_t)i * n_frames + t] = (float)v;
        }
    }
    // clamp to max-8, then (x+4)/4 — done on the double max, stored as float
    const double floor_v = mx - 8.0;
    const size_t total = (size_t)n_mels * n_frames;
    for (size_t i = 0; i < total; i++) {
        double v = mel[i];
        if (v < floor_v) v = floor_v;
        mel[i] = (float)((v + 4.0) / 4.0);
    }
    out->data = mel;
    out->n_mels = n_mels;
    out->n_frames = n_frames;
    out->content_frames = n_frames - AM_MEL_WINDOW_FRAMES;
    return 0;
}

int am_mel_compute_batch(am_mel *m, const float *const *samples, const size_t *n_samples, int B,
                         am_mel_result *out) {
    if (!m || !samples || !n_samples || !out || B < 0) return am_set_error(AM_EINVAL, "invalid mel arguments");
    memset(out, 0, (size_t)B * sizeof *out);
    for (int b = 0; b < B; b++) {
        int rc;
        if (!samples[b] && n_samples[b]) rc = am_set_error(AM_EINVAL, "clip %d has no samples", b);
        else rc = compute_one(m, samples[b], n_samples[b], &out[b]);
        if (rc) {
            for (int i = 0; i < b; i++) am_mel_free_result(&out[i]);
            return rc;
        }
    }
    return 0;
}

int am_mel_compute(am_mel *m, const float *samples, size_t n_samples, am_mel_result *out) {
    return am_mel_compute_batch(m, &samples, &n_samples, 1, out);
}

void am_mel_window_n(float *dst, const am_mel_result *mel, int offset, int n_frames) {
    const int W = AM_MEL_WINDOW_FRAMES;
    int avail = mel->n_frames - offset;
    if (avail < 0) avail = 0;
    if (avail > n_frames) avail = n_frames;
    if (avail > W) avail = W;
    for (int i = 0; i < mel->n_mels; i++) {
        const float *src = mel->data + (size_t)i * mel->n_frames + offset;
        float *d = dst + (size_t)i * W;
        if (avail) memcpy(d, src, (size_t)avail * sizeof *d);
        memset(d + avail, 0, (size_t)(W - avail) * sizeof *d);
    }
}

void am_mel_window(float *dst, const am_mel_result *mel, int offset) {
    am_mel_window_n(dst, mel, offset, AM_MEL_WINDOW_FRAMES);
}
