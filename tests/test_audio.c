// test_audio.c — am_audio: decoding from file and memory, sample counts against
// the reference (golden.json), bit-exactness on 16 kHz PCM, rate/channel
// conversion, every encoder Debian's libavcodec has (round trip through
// libavformat in memory), bad input, max_seconds and concurrent use; inputs
// fuzz/fuzz_audio found (test_fuzz_*).
#include "am_audio.h"
#include "am_test.h"

#include <cjson/cJSON.h>
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/channel_layout.h>
#include <libavutil/log.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/resource.h>
#include <unistd.h>

#define PI 3.14159265358979323846

static int ran_any;

// ---------------------------------------------------------------- helpers
static uint32_t rd32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static void wr32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void wr16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

// If buf is a 16 kHz mono 16-bit PCM WAV, point *pcm at its data chunk (bytes,
// little-endian s16) and return the sample count; otherwise return 0.
static size_t wav_pcm16k(const uint8_t *buf, size_t n, const uint8_t **pcm) {
    if (n < 12 || memcmp(buf, "RIFF", 4) || memcmp(buf + 8, "WAVE", 4)) return 0;
    int fmt_ok = 0;
    for (size_t off = 12; off + 8 <= n;) {
        uint32_t sz = rd32(buf + off + 4);
        const uint8_t *body = buf + off + 8;
        size_t avail = n - off - 8;
        if (!memcmp(buf + off, "fmt ", 4) && sz >= 16 && avail >= 16) {
            uint16_t tag = rd16(body);
            if (tag == 0xFFFE && sz >= 26 && avail >= 26) tag = rd16(body + 24); // extensible
            fmt_ok = tag == 1 && rd16(body + 2) == 1 && rd32(body + 4) == 16000 &&
                     rd16(body + 14) == 16;
        } else if (!memcmp(buf + off, "data", 4)) {
            if (!fmt_ok) return 0;
            *pcm = body;
            return AM_MIN((size_t)sz, avail) / 2;
        }
        off += 8 + (size_t)sz + (sz & 1);
    }
    return 0;
}

// A 16-bit PCM WAV image; data_frames frames of interleaved s16 (may be 0).
static uint8_t *make_wav(int rate, int channels, const int16_t *data, size_t frames, size_t *size) {
    size_t data_bytes = frames * (size_t)channels * 2;
    uint8_t *b = malloc(44 + data_bytes);
    if (!b) return NULL;
    memcpy(b, "RIFF", 4);
    wr32(b + 4, (uint32_t)(36 + data_bytes));
    memcpy(b + 8, "WAVEfmt ", 8);
    wr32(b + 16, 16);
    wr16(b + 20, 1);
    wr16(b + 22, (uint16_t)channels);
    wr32(b + 24, (uint32_t)rate);
    wr32(b + 28, (uint32_t)(rate * channels * 2));
    wr16(b + 32, (uint16_t)(channels * 2));
    wr16(b + 34, 16);
    memcpy(b + 36, "data", 4);
    wr32(b + 40, (uint32_t)data_bytes);
    for (size_t i = 0; i < frames * (size_t)channels; i++) wr16(b + 44 + 2 * i, (uint16_t)data[i]);
    *size = 44 + data_bytes;
    return b;
}

static int16_t to_s16(double v) {
    double s = round(v * 32767.0);
    return (int16_t)(s > 32767 ? 32767 : s < -32768 ? -32768 : s);
}

// Best normalised correlation of x against amp*sin(2*pi*f*i/16000) over lags in
// [-max_lag, max_lag], skipping `edge` samples at both ends. *lag_out = best lag.
static double sine_corr(const float *x, size_t n, double f, int max_lag, size_t edge, int *lag_out) {
    double best = -2.0;
    *lag_out = 0;
    if (n <= 2 * edge + 2 * (size_t)max_lag) return best;
    for (int lag = -max_lag; lag <= max_lag; lag++) {
        double sxy = 0, sxx = 0, syy = 0;
        for (size_t i = edge + (size_t)max_lag; i < n - edge - (size_t)max_lag; i++) {
            double y = sin(2 * PI * f * (double)((long)i - lag) / AM_SAMPLE_RATE);
            sxy += x[i] * y;
            sxx += (double)x[i] * x[i];
            syy += y * y;
        }
        double c = sxx > 0 ? sxy / sqrt(sxx * syy) : 0;
        if (c > best) {
            best = c;
            *lag_out = lag;
        }
    }
    return best;
}

static double rms(const float *x, size_t from, size_t to) {
    double s = 0;
    for (size_t i = from; i < to; i++) s += (double)x[i] * x[i];
    return to > from ? sqrt(s / (double)(to - from)) : 0;
}

static int same_samples(const float *a, size_t na, const float *b, size_t nb) {
    return na == nb && (na == 0 || memcmp(a, b, na * sizeof(float)) == 0);
}

// ---------------------------------------------------------------- shared clips
static const char *const k_clips[] = {
    "jfk.wav",           "jfk.mp3",           "jfk-44k-stereo.flac", "one-two-three-44k.wav",
    "librivox-0870.wav", "librivox-0880.wav", "librivox-0890.wav",   "librivox-0920.wav",
    "librivox-0930.wav", "espeak-quick-fox.wav", "long-mix-16k.wav",
};

// decode_file == decode_memory; for 16 kHz mono s16 WAVs, bit-exact vs the data chunk.
static void test_shared_clips(void) {
    for (size_t c = 0; c < AM_ARRAY_LEN(k_clips); c++) {
        char rel[256], path[1024];
        snprintf(rel, sizeof rel, "audio/%s", k_clips[c]);
        if (!am_test_find(rel, path, sizeof path)) {
            SKIP_CASE(k_clips[c], "not found under %s/audio or tests/data", am_test_shared_dir());
            continue;
        }
        ran_any = 1;
        float *a = NULL, *b = NULL;
        size_t na = 0, nb = 0, size = 0, np = 0;
        int rc = am_audio_decode_file(path, NULL, &a, &na);
        CHECKF(rc == 0 && na > 0, "%s: rc=%d %s", path, rc, am_last_error());
        uint8_t *file = am_test_read_file(path, &size);
        CHECK(file != NULL);
        if (file) {
            rc = am_audio_decode_memory(file, size, NULL, &b, &nb);
            CHECKF(rc == 0, "%s (memory): rc=%d %s", path, rc, am_last_error());
            CHECKF(same_samples(a, na, b, nb), "%s: file (%zu) and memory (%zu) decodes differ",
                   path, na, nb);
            const uint8_t *pcm = NULL;
            np = wav_pcm16k(file, size, &pcm);
            if (np) {
                size_t bad = 0;
                for (size_t i = 0; i < AM_MIN(np, na); i++)
                    if (a[i] != (float)(int16_t)rd16(pcm + 2 * i) / 32768.0f) bad++;
                CHECKF(np == na && bad == 0, "%s: %zu samples vs %zu in data chunk, %zu differ",
                       path, na, np, bad);
            }
        }
        printf("clip %-24s %8zu samples%s\n", k_clips[c], na, np ? " (bit-exact vs data chunk)" : "");
        free(file);
        am_audio_free(a);
        am_audio_free(b);
    }
}

// Every clip in golden.json decodes to the reference's n_samples.
static void test_golden_counts(void) {
    char path[1024];
    if (!am_test_find("golden/golden.json", path, sizeof path)) {
        SKIP_CASE("golden counts", "golden/golden.json not found under %s", am_test_shared_dir());
        return;
    }
    char *text = am_test_read_file(path, NULL);
    cJSON *root = text ? cJSON_Parse(text) : NULL;
    CHECKF(root != NULL, "cannot parse %s", path);
    const cJSON *cases = cJSON_GetObjectItemCaseSensitive(root, "cases");
    const cJSON *cs;
    char seen[64][128];
    int n_seen = 0;
    cJSON_ArrayForEach(cs, cases) {
        const cJSON *clip = cJSON_GetObjectItemCaseSensitive(cs, "clip");
        const cJSON *ns = cJSON_GetObjectItemCaseSensitive(cs, "n_samples");
        if (!cJSON_IsString(clip) || !cJSON_IsNumber(ns)) continue;
        int dup = 0;
        for (int i = 0; i < n_seen; i++) dup |= !strcmp(seen[i], clip->valuestring);
        if (dup) continue;
        if (n_seen < 64) snprintf(seen[n_seen++], sizeof seen[0], "%s", clip->valuestring);
        char rel[256], clip_path[1024];
        snprintf(rel, sizeof rel, "audio/%s", clip->valuestring);
        if (!am_test_find(rel, clip_path, sizeof clip_path)) {
            SKIP_CASE(clip->valuestring, "golden clip not found");
            continue;
        }
        ran_any = 1;
        float *s = NULL;
        size_t n = 0;
        int rc = am_audio_decode_file(clip_path, NULL, &s, &n);
        CHECKF(rc == 0 && n == (size_t)ns->valuedouble, "%s: rc=%d n=%zu, reference %.0f (%s)",
               clip->valuestring, rc, n, ns->valuedouble, am_last_error());
        am_audio_free(s);
    }
    CHECK(n_seen > 0);
    cJSON_Delete(root);
    free(text);
}

// ---------------------------------------------------------------- generated WAVs
static void test_wav_16k_exact(void) {
    ran_any = 1;
    enum { N = 4000 };
    int16_t pcm[N];
    uint32_t x = 12345;
    for (int i = 0; i < N; i++) {
        x = x * 1664525u + 1013904223u;
        pcm[i] = (int16_t)(x >> 16);
    }
    pcm[0] = -32768;
    pcm[1] = 32767;
    pcm[2] = 0;
    size_t size;
    uint8_t *wav = make_wav(16000, 1, pcm, N, &size);
    float *s = NULL;
    size_t n = 0;
    int rc = am_audio_decode_memory(wav, size, NULL, &s, &n);
    CHECKF(rc == 0 && n == N, "rc=%d n=%zu %s", rc, n, am_last_error());
    size_t bad = 0;
    for (size_t i = 0; i < AM_MIN(n, (size_t)N); i++) bad += s[i] != (float)pcm[i] / 32768.0f;
    CHECKF(bad == 0, "%zu samples not bit-exact", bad);
    CHECK(n < 2 || (s[0] == -1.0f && s[1] == 32767.0f / 32768.0f));
    am_audio_free(s);

    // Truncated mid-data (odd byte count): decodes the intact prefix, like the CLI.
    rc = am_audio_decode_memory(wav, 44 + 2001, NULL, &s, &n);
    CHECKF(rc == 0 && n > 0 && n <= 1000, "truncated body: rc=%d n=%zu %s", rc, n, am_last_error());
    bad = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) bad += s[i] != (float)pcm[i] / 32768.0f;
    CHECK(bad == 0);
    am_audio_free(s);
    free(wav);
}

// 8 kHz stereo -> 16 kHz mono: length doubles, pitch and amplitude survive,
// the downmix is ffmpeg's (L+R)/2.
static void test_wav_8k_stereo(void) {
    ran_any = 1;
    enum { FR = 8000 };
    int16_t *pcm = malloc(sizeof(int16_t) * FR * 2);
    const double f = 440.0, amp = 0.5;
    for (int variant = 0; variant < 2; variant++) { // 0: L = R, 1: L only
        for (int i = 0; i < FR; i++) {
            int16_t v = to_s16(amp * sin(2 * PI * f * i / 8000.0));
            pcm[2 * i] = v;
            pcm[2 * i + 1] = variant ? 0 : v;
        }
        size_t size;
        uint8_t *wav = make_wav(8000, 2, pcm, FR, &size);
        float *s = NULL;
        size_t n = 0;
        int rc = am_audio_decode_memory(wav, size, NULL, &s, &n);
        CHECKF(rc == 0 && n == 16000, "8k stereo: rc=%d n=%zu %s", rc, n, am_last_error());
        if (rc == 0 && n > 1000) {
            int lag;
            double c = sine_corr(s, n, f, 4, 160, &lag);
            double want = (variant ? amp / 2 : amp) / sqrt(2.0);
            double r = rms(s, 160, n - 160);
            CHECKF(c > 0.999 && lag == 0, "8k stereo variant %d: corr %.5f lag %d", variant, c, lag);
            CHECKF(fabs(r - want) < 0.01 * want, "8k stereo variant %d: rms %.5f want %.5f",
                   variant, r, want);
        }
        am_audio_free(s);
        free(wav);
    }
    free(pcm);
}

// A header claiming a very low rate expands hugely (100 Hz -> 160x): the count
// is exact and max_seconds stops it early.
static void test_wav_low_rate(void) {
    ran_any = 1;
    enum { FR = 3000 };
    int16_t *pcm = malloc(sizeof(int16_t) * FR * 2);
    for (int i = 0; i < 2 * FR; i++) pcm[i] = to_s16(0.25 * sin(i * 0.37));
    size_t size;
    uint8_t *wav = make_wav(100, 2, pcm, FR, &size);
    float *s = NULL;
    size_t n = 0;
    int rc = am_audio_decode_memory(wav, size, NULL, &s, &n);
    CHECKF(rc == 0 && n == (size_t)FR * 160, "100 Hz: rc=%d n=%zu %s", rc, n, am_last_error());
    am_audio_free(s);
    am_audio_params p = am_audio_default_params();
    p.max_seconds = 2.0;
    rc = am_audio_decode_memory(wav, size, &p, &s, &n);
    CHECKF(rc == AM_ERANGE && s == NULL && n == 0, "100 Hz limited: rc=%d", rc);
    free(wav);
    free(pcm);
}

// Found by fuzz/fuzz_audio: a 78-byte A-law WAV whose header claims 1073749824 Hz
// made swr_init allocate and zero a 1.1 GB filter bank (the filter grows with the
// rate ratio): a tiny upload costing the server a gigabyte. Input rates above
// 768 kHz are now refused (AM_EAUDIO naming the rate) before any resampler is
// built; 768 kHz itself still decodes.
static void test_fuzz_huge_rate(void) {
    ran_any = 1;
    static const uint8_t wav[78] = {
        0x52, 0x49, 0x46, 0x46, 0x24, 0x04, 0x00, 0x00, 0x57, 0x41, 0x56, 0x45, 0x66, 0x6d, 0x74, 0x20, 0x10,
        0x00, 0x00, 0x00, 0x06, 0x00, 0x01, 0x00, 0x40, 0x1f, 0x00, 0x40, 0x00, 0x01, 0x00, 0x08, 0x00, 0x64,
        0x61, 0x74, 0x64, 0x61, 0x74, 0x61, 0x00, 0x04, 0x00, 0x00, 0x2e, 0xf9, 0xc8, 0xf9, 0x93, 0x05, 0xf5,
        0x6b, 0xf4, 0xb5, 0xf6, 0x07, 0xfc, 0xc3, 0xfb, 0xe8, 0x42, 0x07, 0x41, 0x08, 0x27, 0xab, 0x0b, 0xfc,
        0x09, 0xbb, 0x09, 0x0d, 0x08, 0xfb, 0x04, 0x11, 0x03, 0x44};
    struct rusage before, after;
    getrusage(RUSAGE_SELF, &before);
    float *s = (float *)&s;
    size_t n = 99;
    int rc = am_audio_decode_memory(wav, sizeof wav, NULL, &s, &n);
    getrusage(RUSAGE_SELF, &after);
    CHECKF(rc == AM_EAUDIO && s == NULL && n == 0, "1 GHz A-law: rc=%d n=%zu %s", rc, n, am_last_error());
    CHECKF(strstr(am_last_error(), "1073749824 Hz") != NULL, "1 GHz A-law: message '%s'", am_last_error());
    CHECKF(after.ru_maxrss - before.ru_maxrss < 256 * 1024, "1 GHz A-law: peak memory grew by %ld MB",
           (after.ru_maxrss - before.ru_maxrss) / 1024);
    // the limit itself: 768000 Hz decodes (to 16 kHz), 768001 Hz is refused
    int16_t pcm[4800];
    for (int i = 0; i < 4800; i++) pcm[i] = to_s16(0.25 * sin(i * 0.01));
    static const int rates[2] = {768000, 768001};
    for (int k = 0; k < 2; k++) {
        size_t size;
        uint8_t *w = make_wav(rates[k], 1, pcm, 4800, &size);
        rc = am_audio_decode_memory(w, size, NULL, &s, &n);
        if (k == 0) CHECKF(rc == 0 && n == 100, "768 kHz: rc=%d n=%zu %s", rc, n, am_last_error());
        else CHECKF(rc == AM_EAUDIO && s == NULL, "768001 Hz: rc=%d %s", rc, am_last_error());
        am_audio_free(s);
        free(w);
    }
}

// ---------------------------------------------------------------- encoder round trips
typedef struct {
    uint8_t *data;
    size_t size, cap, pos;
} sink;

static int sink_write(void *opaque, uint8_t *buf, int n) {
    sink *s = opaque;
    size_t end = s->pos + (size_t)n;
    if (end > s->cap) {
        size_t cap = AM_MAX(end, s->cap * 2 + 4096);
        uint8_t *p = realloc(s->data, cap);
        if (!p) return AVERROR(ENOMEM);
        s->data = p;
        s->cap = cap;
    }
    if (s->pos > s->size) memset(s->data + s->size, 0, s->pos - s->size);
    memcpy(s->data + s->pos, buf, (size_t)n);
    s->pos = end;
    if (end > s->size) s->size = end;
    return n;
}

static int64_t sink_seek(void *opaque, int64_t off, int whence) {
    sink *s = opaque;
    whence &= ~AVSEEK_FORCE;
    if (whence == AVSEEK_SIZE) return (int64_t)s->size;
    int64_t base = whence == SEEK_SET ? 0 : whence == SEEK_CUR ? (int64_t)s->pos : (int64_t)s->size;
    if (base + off < 0) return AVERROR(EINVAL);
    s->pos = (size_t)(base + off);
    return (int64_t)s->pos;
}

static void fill_frame(AVFrame *fr, int64_t start, int n, int rate, double f, double amp) {
    int ch = fr->ch_layout.nb_channels;
    enum AVSampleFormat fmt = fr->format;
    int planar = av_sample_fmt_is_planar(fmt);
    enum AVSampleFormat packed = av_get_packed_sample_fmt(fmt);
    for (int i = 0; i < fr->nb_samples; i++) {
        double v = i < n ? amp * sin(2 * PI * f * (double)(start + i) / rate) : 0.0;
        for (int c = 0; c < ch; c++) {
            uint8_t *base = fr->extended_data[planar ? c : 0];
            size_t k = planar ? (size_t)i : (size_t)i * ch + c;
            if (packed == AV_SAMPLE_FMT_FLT) ((float *)base)[k] = (float)v;
            else if (packed == AV_SAMPLE_FMT_DBL) ((double *)base)[k] = v;
            else if (packed == AV_SAMPLE_FMT_S16) ((int16_t *)base)[k] = to_s16(v);
            else if (packed == AV_SAMPLE_FMT_S32) ((int32_t *)base)[k] = (int32_t)to_s16(v) * 65536;
        }
    }
}

static int write_packets(AVCodecContext *enc, AVFormatContext *oc, AVStream *st, AVFrame *fr,
                         AVPacket *pkt) {
    int ret = avcodec_send_frame(enc, fr);
    if (ret < 0) return ret;
    for (;;) {
        ret = avcodec_receive_packet(enc, pkt);
        if (ret == AVERROR(EAGAIN) || ret == AVERROR_EOF) return 0;
        if (ret < 0) return ret;
        av_packet_rescale_ts(pkt, enc->time_base, st->time_base);
        pkt->stream_index = st->index;
        if ((ret = av_interleaved_write_frame(oc, pkt)) < 0) return ret;
    }
}

// Encode `seconds` of a sine into `muxer` with encoder `enc_name` in memory.
// Returns 0 (out/size set), 1 when the encoder or muxer is missing, <0 on error.
static int encode_sine(const char *muxer, const char *enc_name, int rate, int channels,
                       double seconds, double f, double amp, uint8_t **out, size_t *size) {
    const AVCodec *codec = avcodec_find_encoder_by_name(enc_name);
    const AVOutputFormat *ofmt = av_guess_format(muxer, NULL, NULL);
    if (!codec || !ofmt) return 1;
    sink sk = {0};
    AVFormatContext *oc = NULL;
    AVCodecContext *enc = NULL;
    AVIOContext *pb = NULL;
    AVFrame *fr = NULL;
    AVPacket *pkt = av_packet_alloc();
    int ret = avformat_alloc_output_context2(&oc, ofmt, NULL, NULL);
    if (ret < 0) goto fail;
    enc = avcodec_alloc_context3(codec);
    enc->sample_fmt = codec->sample_fmts ? codec->sample_fmts[0] : AV_SAMPLE_FMT_S16;
    enc->sample_rate = rate;
    av_channel_layout_default(&enc->ch_layout, channels);
    enc->time_base = (AVRational){1, rate};
    enc->bit_rate = 96000;
    if (ofmt->flags & AVFMT_GLOBALHEADER) enc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    if ((ret = avcodec_open2(enc, codec, NULL)) < 0) goto fail;
    AVStream *st = avformat_new_stream(oc, NULL);
    ret = AVERROR(ENOMEM);
    if (!st) goto fail;
    st->time_base = enc->time_base;
    if ((ret = avcodec_parameters_from_context(st->codecpar, enc)) < 0) goto fail;
    uint8_t *iobuf = av_malloc(4096);
    pb = avio_alloc_context(iobuf, 4096, 1, &sk, NULL, sink_write, sink_seek);
    oc->pb = pb;
    oc->flags |= AVFMT_FLAG_CUSTOM_IO;
    if ((ret = avformat_write_header(oc, NULL)) < 0) goto fail;
    int fs = enc->frame_size > 0 ? enc->frame_size : 1024;
    int small_last = !!(codec->capabilities &
                        (AV_CODEC_CAP_SMALL_LAST_FRAME | AV_CODEC_CAP_VARIABLE_FRAME_SIZE));
    int64_t total = (int64_t)llround(seconds * rate);
    fr = av_frame_alloc();
    for (int64_t done = 0; done < total; done += fs) {
        int n = (int)AM_MIN((int64_t)fs, total - done);
        av_frame_unref(fr);
        fr->format = enc->sample_fmt;
        fr->sample_rate = rate;
        fr->nb_samples = small_last ? n : fs;
        av_channel_layout_copy(&fr->ch_layout, &enc->ch_layout);
        if ((ret = av_frame_get_buffer(fr, 0)) < 0) goto fail;
        fill_frame(fr, done, n, rate, f, amp);
        fr->pts = done;
        if ((ret = write_packets(enc, oc, st, fr, pkt)) < 0) goto fail;
    }
    if ((ret = write_packets(enc, oc, st, NULL, pkt)) < 0) goto fail;
    if ((ret = av_write_trailer(oc)) < 0) goto fail;
    avio_flush(pb);
    *out = sk.data;
    *size = sk.size;
    sk.data = NULL;
    ret = 0;
fail:
    if (ret < 0) fprintf(stderr, "encode %s/%s failed: %s\n", muxer, enc_name, av_err2str(ret));
    if (pb) av_freep(&pb->buffer);
    avio_context_free(&pb);
    avformat_free_context(oc);
    avcodec_free_context(&enc);
    av_frame_free(&fr);
    av_packet_free(&pkt);
    free(sk.data);
    return ret;
}

static void test_encoded_formats(void) {
    static const struct {
        const char *name, *muxer, *encoder;
        int rate, channels;
        int exact;     // lossless at 16 kHz mono: decoded == quantised input, bit for bit
        double tol_ms; // allowed duration error
    } cases[] = {
        // Containers that record the exact length (granule, discard padding, LAME
        // tag, FLAC header) give it back to the sample; ffmpeg's mp4 muxer trims the
        // AAC priming but not the tail, so up to one 1024-sample frame remains.
        {"ogg/opus", "ogg", "libopus", 48000, 1, 0, 1},
        {"ogg/vorbis", "ogg", "libvorbis", 44100, 2, 0, 1},
        {"m4a/aac", "ipod", "aac", 44100, 1, 0, 1 + 1024 * 1000.0 / 44100},
        {"mp4/aac stereo", "mp4", "aac", 48000, 2, 0, 1 + 1024 * 1000.0 / 48000},
        {"webm/opus", "webm", "libopus", 48000, 2, 0, 1},
        {"flac 44.1k", "flac", "flac", 44100, 1, 0, 1},
        {"flac 16k exact", "flac", "flac", 16000, 1, 1, 0},
        {"mp3/lame", "mp3", "libmp3lame", 44100, 1, 0, 1},
        {"mp3/lame 22k stereo", "mp3", "libmp3lame", 22050, 2, 0, 1},
    };
    const double seconds = 1.25, f = 440.0, amp = 0.5;
    const size_t want = (size_t)(seconds * AM_SAMPLE_RATE);
    for (size_t c = 0; c < AM_ARRAY_LEN(cases); c++) {
        uint8_t *data = NULL;
        size_t size = 0;
        int ret = encode_sine(cases[c].muxer, cases[c].encoder, cases[c].rate, cases[c].channels,
                              seconds, f, amp, &data, &size);
        if (ret == 1) {
            SKIP_CASE(cases[c].name, "encoder '%s' or muxer '%s' not in this libavcodec",
                      cases[c].encoder, cases[c].muxer);
            continue;
        }
        CHECKF(ret == 0, "%s: encoding failed", cases[c].name);
        if (ret) continue;
        ran_any = 1;
        float *s = NULL;
        size_t n = 0;
        int rc = am_audio_decode_memory(data, size, NULL, &s, &n);
        CHECKF(rc == 0, "%s: rc=%d %s", cases[c].name, rc, am_last_error());
        long diff = (long)n - (long)want;
        CHECKF(rc == 0 && fabs(1000.0 * (double)diff / AM_SAMPLE_RATE) <= cases[c].tol_ms,
               "%s: %zu samples, expected %zu (+-%.1f ms)", cases[c].name, n, want, cases[c].tol_ms);
        int lag = 0;
        double corr = rc == 0 ? sine_corr(s, n, f, 32, 480, &lag) : 0;
        double r = rc == 0 && n > 1000 ? rms(s, 480, n - 480) : 0;
        CHECKF(corr > 0.99 && abs(lag) <= 2, "%s: sine correlation %.4f at lag %d", cases[c].name,
               corr, lag);
        CHECKF(fabs(r - amp / sqrt(2.0)) < 0.05 * amp, "%s: rms %.4f", cases[c].name, r);
        if (cases[c].exact && rc == 0) {
            size_t bad = 0;
            for (size_t i = 0; i < AM_MIN(n, want); i++)
                bad += s[i] != (float)to_s16(amp * sin(2 * PI * f * (double)i / 16000)) / 32768.0f;
            CHECKF(n == want && bad == 0, "%s: %zu samples differ", cases[c].name, bad);
        }
        printf("%-20s %7zu bytes -> %zu samples (%+.2f ms), corr %.5f lag %d rms %.4f\n",
               cases[c].name, size, n, 1000.0 * (double)diff / AM_SAMPLE_RATE, corr, lag, r);
        am_audio_free(s);
        free(data);
    }
}

// ---------------------------------------------------------------- errors
static void expect_error(const char *what, int rc, float *s, size_t n) {
    CHECKF(rc < 0, "%s: expected an error, got rc=%d n=%zu", what, rc, n);
    CHECKF(s == NULL && n == 0, "%s: outputs not cleared", what);
    CHECKF(am_last_error()[0] != 0, "%s: empty error message", what);
    if (rc < 0) printf("error %-28s -> %d: %s\n", what, rc, am_last_error());
    am_audio_free(s);
}

static void test_errors(void) {
    ran_any = 1;
    float *s = (float *)&s; // deliberately non-NULL: must be cleared
    size_t n = 99;
    int rc;

    am_set_error(AM_OK, "%s", "");
    uint8_t garbage[8192];
    uint32_t x = 7;
    for (size_t i = 0; i < sizeof garbage; i++) {
        x = x * 1103515245u + 12345u;
        garbage[i] = (uint8_t)(x >> 23);
    }
    rc = am_audio_decode_memory(garbage, sizeof garbage, NULL, &s, &n);
    expect_error("garbage bytes", rc, s, n);
    static const char text[] = "this is plainly not audio, just a sentence of text repeated. ";
    rc = am_audio_decode_memory(text, sizeof text - 1, NULL, &s, &n);
    expect_error("text bytes", rc, s, n);

    am_set_error(AM_OK, "%s", "");
    rc = am_audio_decode_memory(garbage, 0, NULL, &s, &n);
    expect_error("empty buffer", rc, s, n);
    rc = am_audio_decode_memory(NULL, 0, NULL, &s, &n);
    expect_error("NULL empty buffer", rc, s, n);
    rc = am_audio_decode_memory(NULL, 10, NULL, &s, &n);
    CHECK(rc == AM_EINVAL);
    expect_error("NULL data", rc, s, n);
    rc = am_audio_decode_memory(garbage, 10, NULL, NULL, &n);
    CHECK(rc == AM_EINVAL && am_last_error()[0]);
    rc = am_audio_decode_memory(garbage, 10, NULL, &s, NULL);
    CHECK(rc == AM_EINVAL && am_last_error()[0]);
    rc = am_audio_decode_file(NULL, NULL, &s, &n);
    CHECK(rc == AM_EINVAL);
    expect_error("NULL path", rc, s, n);
    rc = am_audio_decode_file("", NULL, &s, &n);
    expect_error("empty path", rc, s, n);
    rc = am_audio_decode_file("/x.wav", NULL, NULL, NULL);
    CHECK(rc == AM_EINVAL);

    rc = am_audio_decode_file("/nonexistent/dir/no-such-file.wav", NULL, &s, &n);
    CHECK(rc == AM_EIO);
    expect_error("nonexistent file", rc, s, n);
    rc = am_audio_decode_file("/tmp", NULL, &s, &n);
    expect_error("directory", rc, s, n);

    char tmp[] = "/tmp/am_audio_test_XXXXXX";
    int fd = mkstemp(tmp);
    CHECK(fd >= 0);
    if (fd >= 0) {
        close(fd);
        rc = am_audio_decode_file(tmp, NULL, &s, &n);
        expect_error("zero-length file", rc, s, n);
        unlink(tmp);
    }

    // Headers: truncated at several points, and complete with a 0-sample data chunk.
    int16_t one[4] = {1000, -1000, 1000, -1000};
    size_t size;
    uint8_t *wav = make_wav(16000, 1, one, 4, &size);
    static const size_t cuts[] = {4, 12, 20, 30, 36};
    for (size_t i = 0; i < AM_ARRAY_LEN(cuts); i++) {
        char what[64];
        snprintf(what, sizeof what, "WAV header cut at %zu", cuts[i]);
        rc = am_audio_decode_memory(wav, cuts[i], NULL, &s, &n);
        expect_error(what, rc, s, n);
    }
    free(wav);
    wav = make_wav(16000, 1, one, 0, &size);
    rc = am_audio_decode_memory(wav, size, NULL, &s, &n);
    expect_error("WAV with 0 samples", rc, s, n);
    CHECKF(strstr(am_last_error(), "audio is empty") != NULL, "message: %s", am_last_error());
    free(wav);

    // A container without audio (a subtitle file).
    static const char srt[] = "1\n00:00:00,000 --> 00:00:01,000\nhello there\n\n"
                              "2\n00:00:01,500 --> 00:00:02,000\nagain\n\n";
    rc = am_audio_decode_memory(srt, sizeof srt - 1, NULL, &s, &n);
    expect_error("no audio stream (srt)", rc, s, n);
    CHECKF(strstr(am_last_error(), "no audio stream") != NULL, "message: %s", am_last_error());

    // Playlists must not make us open other files: a playlist next to a valid
    // WAV that it references by a relative name fails, from a file and from memory.
    int16_t sine[1600];
    for (int i = 0; i < 1600; i++) sine[i] = to_s16(0.3 * sin(i * 0.2));
    wav = make_wav(16000, 1, sine, 1600, &size);
    char dir[] = "/tmp/am_audio_test_XXXXXX";
    if (mkdtemp(dir)) {
        static const char *const lists[][2] = {
            {"list.m3u8", "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:0.1,\nclip.wav\n#EXT-X-ENDLIST\n"},
            {"list.ffconcat", "ffconcat version 1.0\nfile 'clip.wav'\n"},
        };
        char wav_path[256], list_path[256];
        snprintf(wav_path, sizeof wav_path, "%s/clip.wav", dir);
        FILE *fw = fopen(wav_path, "wb");
        CHECK(fw && fwrite(wav, 1, size, fw) == size);
        if (fw) fclose(fw);
        rc = am_audio_decode_file(wav_path, NULL, &s, &n); // sanity: readable directly
        CHECKF(rc == 0 && n == 1600, "clip.wav: rc=%d n=%zu %s", rc, n, am_last_error());
        am_audio_free(s);
        for (size_t i = 0; i < AM_ARRAY_LEN(lists); i++) {
            snprintf(list_path, sizeof list_path, "%s/%s", dir, lists[i][0]);
            fw = fopen(list_path, "wb");
            CHECK(fw && fputs(lists[i][1], fw) >= 0);
            if (fw) fclose(fw);
            rc = am_audio_decode_file(list_path, NULL, &s, &n);
            expect_error(lists[i][0], rc, s, n);
            rc = am_audio_decode_memory(lists[i][1], strlen(lists[i][1]), NULL, &s, &n);
            expect_error(lists[i][0], rc, s, n);
            unlink(list_path);
        }
        unlink(wav_path);
        rmdir(dir);
    } else {
        SKIP_CASE("playlists", "cannot create a directory under /tmp");
    }

    // max_seconds
    am_audio_params p = am_audio_default_params();
    CHECK(p.max_seconds == 0.0);
    p.max_seconds = 0.1;
    rc = am_audio_decode_memory(wav, size, &p, &s, &n);
    CHECKF(rc == 0 && n == 1600, "max_seconds at the limit: rc=%d n=%zu", rc, n);
    am_audio_free(s);
    p.max_seconds = 0.099;
    rc = am_audio_decode_memory(wav, size, &p, &s, &n);
    CHECK(rc == AM_ERANGE);
    expect_error("longer than max_seconds", rc, s, n);
    p.max_seconds = -1;
    rc = am_audio_decode_memory(wav, size, &p, &s, &n);
    CHECK(rc == AM_EINVAL);
    expect_error("negative max_seconds", rc, s, n);
    p.max_seconds = NAN;
    rc = am_audio_decode_memory(wav, size, &p, &s, &n);
    CHECK(rc == AM_EINVAL);
    free(wav);

    char path[1024];
    if (am_test_find("audio/jfk.mp3", path, sizeof path)) {
        uint8_t *mp3 = am_test_read_file(path, &size);
        p.max_seconds = 5;
        rc = am_audio_decode_file(path, &p, &s, &n);
        CHECK(rc == AM_ERANGE);
        expect_error("jfk.mp3 > 5 s", rc, s, n);
        // Truncated mid-stream: the intact prefix decodes, as with the CLI.
        rc = am_audio_decode_memory(mp3, size / 3, NULL, &s, &n);
        CHECKF(rc == 0 && n > 40000 && n < 90000, "truncated mp3: rc=%d n=%zu", rc, n);
        am_audio_free(s);
        for (size_t cut = 0; cut < 2000; cut += 97) { // truncated headers: error, no crash
            rc = am_audio_decode_memory(mp3, cut, NULL, &s, &n);
            CHECK(rc < 0 || n > 0);
            am_audio_free(s);
        }
        free(mp3);
    } else {
        SKIP_CASE("truncated mp3", "audio/jfk.mp3 not found");
    }
}

// ---------------------------------------------------------------- threads
typedef struct {
    const uint8_t *data;
    size_t size;
    const float *want;
    size_t n_want;
    int failures;
} thread_job;

static void *thread_main(void *arg) {
    thread_job *j = arg;
    for (int it = 0; it < 4; it++) {
        float *s = NULL;
        size_t n = 0;
        if (am_audio_decode_memory(j->data, j->size, NULL, &s, &n) != 0 ||
            !same_samples(s, n, j->want, j->n_want))
            j->failures++;
        am_audio_free(s);
        // errors stay per thread
        if (am_audio_decode_memory(j->data, 3, NULL, &s, &n) >= 0 || !am_last_error()[0])
            j->failures++;
    }
    return NULL;
}

static void test_threads(void) {
    ran_any = 1;
    uint8_t *data = NULL;
    size_t size = 0;
    if (encode_sine("ogg", "libopus", 48000, 2, 2.0, 300, 0.4, &data, &size) != 0) {
        int16_t pcm[2 * 22050];
        for (int i = 0; i < 22050; i++) pcm[2 * i] = pcm[2 * i + 1] = to_s16(0.4 * sin(i * 0.05));
        data = make_wav(22050, 2, pcm, 22050, &size);
    }
    float *want = NULL;
    size_t n_want = 0;
    CHECK(am_audio_decode_memory(data, size, NULL, &want, &n_want) == 0);
    enum { T = 6 };
    pthread_t th[T];
    thread_job jobs[T];
    for (int i = 0; i < T; i++) {
        jobs[i] = (thread_job){data, size, want, n_want, 0};
        CHECK(pthread_create(&th[i], NULL, thread_main, &jobs[i]) == 0);
    }
    for (int i = 0; i < T; i++) {
        pthread_join(th[i], NULL);
        CHECKF(jobs[i].failures == 0, "thread %d: %d failures", i, jobs[i].failures);
    }
    am_audio_free(want);
    free(data);
}

// ---------------------------------------------------------------- main
// am_audio_wav_encode: a WAV the decoder reads back to the same 16-bit samples.
static void test_wav_encode(void) {
    const size_t n = 16000 + 123;
    float *x = malloc(n * sizeof *x), *y = NULL;
    for (size_t i = 0; i < n; i++) x[i] = (float)(1.2 * sin(0.01 * (double)i)); // clips at +-1
    unsigned char *w = NULL;
    size_t len = 0, ny = 0;
    CHECK(am_audio_wav_encode(x, n, &w, &len) == 0 && len == 44 + 2 * n && !memcmp(w, "RIFF", 4));
    CHECK(w && am_audio_decode_memory(w, len, NULL, &y, &ny) == 0 && ny == n);
    double worst = 0;
    for (size_t i = 0; y && i < n && ny == n; i++) {
        const double want = fmax(-1.0, fmin(32767.0 / 32768.0, nearbyint((double)x[i] * 32768.0) / 32768.0));
        worst = fmax(worst, fabs((double)y[i] - want));
    }
    CHECKF(worst == 0, "wav round trip: worst difference %g", worst);
    CHECK(am_audio_wav_encode(NULL, 5, &w, &len) == AM_EINVAL);
    free(w);
    free(x);
    am_audio_free(y);
}

int main(void) {
    test_wav_encode();
    // Damaged inputs below make libav* log; keep the output readable.
    av_log_set_level(getenv("AM_TEST_VERBOSE") ? AV_LOG_INFO : AV_LOG_QUIET);
    test_wav_16k_exact();
    test_wav_8k_stereo();
    test_wav_low_rate();
    test_fuzz_huge_rate();
    test_encoded_formats();
    test_errors();
    test_threads();
    test_shared_clips();
    test_golden_counts();
    return am_test_finish("test_audio", ran_any);
}
