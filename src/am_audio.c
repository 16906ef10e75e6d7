// am_audio.c — decode any libavformat input to 16 kHz mono float32, matching
// `ffmpeg -i FILE -f s16le -ac 1 -acodec pcm_s16le -ar 16000 -` / 32768.
//
// Pipeline: AVIOContext (file or memory) -> libavformat (best audio stream) ->
// libavcodec (skip_samples / discard padding applied by the library) ->
// libswresample (mono, 16000 Hz, s16, default options, flushed at the end) ->
// float. The ffmpeg CLI does the same through its filter graph: an abuffer
// source, an auto-inserted aresample (default swr options, no compensation
// because -async is off) and an aformat sink; it guesses a default channel
// layout for inputs that carry none, skips packets that fail to decode and
// treats a read error as the end of the input. All of that is mirrored here.
#include "am_audio.h"

#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/channel_layout.h>
#include <libavutil/error.h>
#include <libavutil/mem.h>
#include <libswresample/swresample.h>

#define IO_BUFFER_SIZE 32768   // bytes; AVIO buffer for memory input
#define FLUSH_CHUNK 4096       // samples; output chunk while flushing swr
#define MAX_DRAIN_ERRORS 64    // consecutive decode errors before a drain gives up
#define MAX_CALL_OUTPUT 65536  // samples; bound on one swr call's output (low input rates)
// Hz; higher input rates are refused. swr's filter bank grows with the input/output
// rate ratio times its phase count (up to 1024): a header claiming ~1 GHz made a
// 78-byte upload allocate and zero 1.1 GB (found by fuzz/fuzz_audio). No real
// audio comes faster; at this rate the filter bank stays under ~7 MB.
#define MAX_INPUT_RATE 768000

// ---------------------------------------------------------------- params
am_audio_params am_audio_default_params(void) {
    am_audio_params p;
    memset(&p, 0, sizeof p);
    p.max_seconds = 0.0;
    return p;
}

void am_audio_free(float *samples) { free(samples); }

// ---------------------------------------------------------------- helpers
static const char *err_str(int err, char *buf) {
    if (av_strerror(err, buf, AV_ERROR_MAX_STRING_SIZE) < 0)
        snprintf(buf, AV_ERROR_MAX_STRING_SIZE, "error %d", err);
    return buf;
}

// Max output samples allowed by p (SIZE_MAX = unlimited).
static int resolve_limit(const am_audio_params *p, size_t *max_samples) {
    double s = p ? p->max_seconds : 0.0;
    if (isnan(s) || s < 0.0) return am_set_error(AM_EINVAL, "audio: max_seconds must be >= 0");
    if (s == 0.0) {
        *max_samples = SIZE_MAX;
        return 0;
    }
    double n = floor(s * AM_SAMPLE_RATE);
    *max_samples = n >= 9.0e15 ? SIZE_MAX : (size_t)n;
    return 0;
}

// Nested opens through the format context (hls/dash segments, mov external
// references, image sequences) are refused: only the input handed to us is read.
static int refuse_io_open(AVFormatContext *s, AVIOContext **pb, const char *url, int flags,
                          AVDictionary **options) {
    (void)flags;
    (void)options;
    *pb = NULL;
    av_log(s, AV_LOG_ERROR, "refusing to open '%s' referenced by the input\n", url);
    return AVERROR(EPERM);
}

// ---------------------------------------------------------------- memory input
typedef struct {
    const uint8_t *data;
    size_t size;
    size_t pos; // may exceed size after a seek past the end; reads then hit EOF
} mem_reader;

static int mem_read(void *opaque, uint8_t *buf, int buf_size) {
    mem_reader *m = opaque;
    if (buf_size <= 0) return AVERROR(EINVAL);
    if (m->pos >= m->size) return AVERROR_EOF;
    size_t n = m->size - m->pos;
    if (n > (size_t)buf_size) n = (size_t)buf_size;
    memcpy(buf, m->data + m->pos, n);
    m->pos += n;
    return (int)n;
}

static int64_t mem_seek(void *opaque, int64_t offset, int whence) {
    mem_reader *m = opaque;
    int64_t base;
    whence &= ~AVSEEK_FORCE;
    switch (whence) {
    case AVSEEK_SIZE: return (int64_t)m->size;
    case SEEK_SET: base = 0; break;
    case SEEK_CUR: base = (int64_t)m->pos; break;
    case SEEK_END: base = (int64_t)m->size; break;
    default: return AVERROR(EINVAL);
    }
    if ((offset > 0 && base > INT64_MAX - offset) || base + offset < 0) return AVERROR(EINVAL);
    m->pos = (size_t)(base + offset);
    return base + offset;
}

// The code of a failed libav call: an allocation failure inside libav is
// AM_ENOMEM (the server's 500), anything else the input's fault (AM_EAUDIO).
static int av_code(int ret) { return ret == AVERROR(ENOMEM) ? AM_ENOMEM : AM_EAUDIO; }

// ---------------------------------------------------------------- conversion state
typedef struct {
    const char *what;        // input name for messages
    double max_seconds;      // for messages
    size_t max_samples;      // reject beyond this (SIZE_MAX = unlimited)
    SwrContext *swr;         // NULL until the first frame
    AVChannelLayout in_layout; // input parameters swr was built for
    int in_rate, in_format;
    int16_t *pcm;            // swr output scratch
    int pcm_cap;             // samples
    const uint8_t **slices;  // per-plane pointers into a frame being sliced
    int slices_cap;
    float *samples;          // result
    size_t n, cap;           // samples used / allocated
    int n_bad;               // packets that failed to decode
    int last_bad;            // AVERROR of the last one
} conv;

static void conv_free(conv *c) {
    swr_free(&c->swr);
    av_channel_layout_uninit(&c->in_layout);
    av_freep(&c->pcm);
    av_freep(&c->slices);
    free(c->samples);
    c->samples = NULL;
}

static int append(conv *c, const int16_t *pcm, int count) {
    size_t k = (size_t)count;
    if (k > c->max_samples - c->n)
        return am_set_error(AM_ERANGE, "%s: audio is longer than max_seconds (%g s)", c->what,
                            c->max_seconds);
    if (c->n + k > c->cap) {
        size_t cap = AM_MAX(AM_MAX(c->cap * 2, c->n + k), (size_t)AM_SAMPLE_RATE * 8);
        size_t bytes;
        if (am_mul_size(cap, sizeof(float), &bytes))
            return am_set_error(AM_ENOMEM, "%s: audio too large", c->what);
        float *p = realloc(c->samples, bytes);
        if (!p) return am_set_error(AM_ENOMEM, "%s: out of memory for %zu samples", c->what, cap);
        c->samples = p;
        c->cap = cap;
    }
    for (size_t i = 0; i < k; i++) c->samples[c->n + i] = (float)pcm[i] / 32768.0f;
    c->n += k;
    return 0;
}

// Run swr on n_in input samples (in == NULL: flush until empty) and append.
static int run_swr(conv *c, const uint8_t **in, int n_in) {
    int want = swr_get_out_samples(c->swr, n_in);
    if (want < 0) return am_set_error(AM_EAUDIO, "%s: resampler failed", c->what);
    if (want < FLUSH_CHUNK) want = FLUSH_CHUNK;
    if (want > c->pcm_cap) {
        av_freep(&c->pcm);
        c->pcm = av_malloc_array((size_t)want, sizeof(int16_t));
        if (!c->pcm) {
            c->pcm_cap = 0;
            return am_set_error(AM_ENOMEM, "%s: out of memory", c->what);
        }
        c->pcm_cap = want;
    }
    for (;;) {
        uint8_t *outp = (uint8_t *)c->pcm;
        int got = swr_convert(c->swr, &outp, c->pcm_cap, in, n_in);
        if (got < 0) {
            char eb[AV_ERROR_MAX_STRING_SIZE];
            return am_set_error(AM_EAUDIO, "%s: resampling failed (%s)", c->what, err_str(got, eb));
        }
        int rc = append(c, c->pcm, got);
        if (rc) return rc;
        // Output that did not fit stays buffered in swr and comes out with the
        // next call; only a flush has to loop until swr is empty.
        if (in || got == 0) return 0;
    }
}

// Convert a frame. At normal rates that is one swr call; a very low input rate
// (say a WAV header claiming 1 Hz) would make one call's output huge, so the
// frame is then fed in slices whose output is bounded, and max_seconds is
// enforced between them. Slicing does not change the output (swr keeps its
// filter state across calls).
static int convert_frame(conv *c, const AVFrame *f) {
    int64_t slice = (int64_t)MAX_CALL_OUTPUT * f->sample_rate / AM_SAMPLE_RATE;
    if (slice < 1) slice = 1;
    if (f->nb_samples <= slice) return run_swr(c, (const uint8_t **)f->extended_data, f->nb_samples);
    int planar = av_sample_fmt_is_planar((enum AVSampleFormat)f->format);
    int nch = f->ch_layout.nb_channels, n_ptr = planar ? nch : 1;
    size_t step = (size_t)av_get_bytes_per_sample((enum AVSampleFormat)f->format) *
                  (size_t)(planar ? 1 : nch);
    if (n_ptr > c->slices_cap) {
        av_freep(&c->slices);
        c->slices = av_malloc_array((size_t)n_ptr, sizeof *c->slices);
        c->slices_cap = c->slices ? n_ptr : 0;
        if (!c->slices) return am_set_error(AM_ENOMEM, "%s: out of memory", c->what);
    }
    for (int off = 0; off < f->nb_samples; off += (int)slice) {
        int k = (int)AM_MIN(slice, (int64_t)(f->nb_samples - off));
        for (int i = 0; i < n_ptr; i++) c->slices[i] = f->extended_data[i] + (size_t)off * step;
        int rc = run_swr(c, c->slices, k);
        if (rc) return rc;
    }
    return 0;
}

// Feed one decoded frame; (re)build swr when the input parameters change
// (the old one is flushed first, so no audio is lost across the change).
static int on_frame(conv *c, const AVFrame *f) {
    AVChannelLayout layout = {0};
    int rc = 0, ret;
    char eb[AV_ERROR_MAX_STRING_SIZE];
    int nch = f->ch_layout.nb_channels;
    if (nch <= 0 || f->sample_rate <= 0 || f->format < 0) {
        rc = am_set_error(AM_EAUDIO, "%s: decoder produced a frame without channels or rate",
                          c->what);
        goto fail;
    }
    if (f->nb_samples <= 0) goto fail;
    if (f->sample_rate > MAX_INPUT_RATE) {
        rc = am_set_error(AM_EAUDIO, "%s: sample rate %d Hz is not supported (at most %d Hz)", c->what,
                          f->sample_rate, MAX_INPUT_RATE);
        goto fail;
    }
    // Like the ffmpeg CLI (guess_layout_max = INT_MAX): no layout -> default for the count.
    if (f->ch_layout.order == AV_CHANNEL_ORDER_UNSPEC)
        av_channel_layout_default(&layout, nch);
    else if ((ret = av_channel_layout_copy(&layout, &f->ch_layout)) < 0) {
        rc = am_set_error(AM_ENOMEM, "%s: out of memory", c->what);
        goto fail;
    }
    if (c->swr && (c->in_rate != f->sample_rate || c->in_format != f->format ||
                   av_channel_layout_compare(&c->in_layout, &layout) != 0)) {
        if ((rc = run_swr(c, NULL, 0))) goto fail;
        swr_free(&c->swr);
    }
    if (!c->swr) {
        AVChannelLayout mono = AV_CHANNEL_LAYOUT_MONO;
        ret = swr_alloc_set_opts2(&c->swr, &mono, AV_SAMPLE_FMT_S16, AM_SAMPLE_RATE, &layout,
                                  (enum AVSampleFormat)f->format, f->sample_rate, 0, NULL);
        if (ret >= 0) ret = swr_init(c->swr);
        if (ret < 0) {
            char desc[128] = "?";
            av_channel_layout_describe(&layout, desc, sizeof desc);
            const char *fmt_name = av_get_sample_fmt_name((enum AVSampleFormat)f->format);
            rc = am_set_error(av_code(ret), "%s: cannot convert %s %d Hz %s to mono 16 kHz (%s)",
                              c->what, desc, f->sample_rate, fmt_name ? fmt_name : "?",
                              err_str(ret, eb));
            goto fail;
        }
        av_channel_layout_uninit(&c->in_layout);
        if (av_channel_layout_copy(&c->in_layout, &layout) < 0) {
            rc = am_set_error(AM_ENOMEM, "%s: out of memory", c->what);
            goto fail;
        }
        c->in_rate = f->sample_rate;
        c->in_format = f->format;
    }
    rc = convert_frame(c, f);
fail:
    av_channel_layout_uninit(&layout);
    return rc;
}

// Receive every frame the decoder has ready. Decode errors skip the packet, as
// the ffmpeg CLI does; only allocation failure is fatal.
static int drain(conv *c, AVCodecContext *dec, AVFrame *frame) {
    int errors = 0, rc = 0;
    for (;;) {
        int ret = avcodec_receive_frame(dec, frame);
        if (ret == AVERROR(EAGAIN) || ret == AVERROR_EOF) goto fail;
        if (ret == AVERROR(ENOMEM)) {
            rc = am_set_error(AM_ENOMEM, "%s: out of memory while decoding", c->what);
            goto fail;
        }
        if (ret < 0) {
            c->n_bad++;
            c->last_bad = ret;
            if (++errors >= MAX_DRAIN_ERRORS) goto fail;
            continue;
        }
        errors = 0;
        rc = on_frame(c, frame);
        av_frame_unref(frame);
        if (rc) goto fail;
    }
fail:
    return rc;
}

// ---------------------------------------------------------------- demux + decode
// Decode the input behind pb (owned by the caller). `url` is only a probing hint.
static int decode_stream(AVIOContext *pb, const char *url, const char *what, size_t max_samples,
                         double max_seconds, float **out, size_t *n_out) {
    AVFormatContext *fmt = NULL;
    AVCodecContext *dec = NULL;
    AVPacket *pkt = NULL;
    AVFrame *frame = NULL;
    AVDictionary *opts = NULL;
    conv c = {.what = what, .max_seconds = max_seconds, .max_samples = max_samples};
    char eb[AV_ERROR_MAX_STRING_SIZE];
    const AVCodec *codec = NULL;
    int rc = 0, ret, read_err = 0;

    fmt = avformat_alloc_context();
    if (!fmt) {
        rc = am_set_error(AM_ENOMEM, "%s: out of memory", what);
        goto fail;
    }
    fmt->pb = pb;
    fmt->flags |= AVFMT_FLAG_CUSTOM_IO;
    fmt->io_open = refuse_io_open;
    // Demuxers that open nested inputs with their own context (concat) inherit
    // this whitelist; naming no protocol refuses them all.
    ret = av_dict_set(&opts, "protocol_whitelist", "none", 0);
    if (ret >= 0) ret = avformat_open_input(&fmt, url, NULL, &opts); // frees fmt on failure
    if (ret < 0) {
        rc = am_set_error(av_code(ret), "%s: unrecognised or unreadable audio/media input (%s)", what,
                          err_str(ret, eb));
        goto fail;
    }
    if ((ret = avformat_find_stream_info(fmt, NULL)) < 0) {
        rc = am_set_error(av_code(ret), "%s: cannot read stream information (%s)", what,
                          err_str(ret, eb));
        goto fail;
    }
    int idx = av_find_best_stream(fmt, AVMEDIA_TYPE_AUDIO, -1, -1, &codec, 0);
    if (idx == AVERROR_DECODER_NOT_FOUND) {
        enum AVCodecID id = AV_CODEC_ID_NONE;
        for (unsigned i = 0; i < fmt->nb_streams && id == AV_CODEC_ID_NONE; i++)
            if (fmt->streams[i]->codecpar->codec_type == AVMEDIA_TYPE_AUDIO)
                id = fmt->streams[i]->codecpar->codec_id;
        rc = am_set_error(AM_EAUDIO, "%s: no decoder for audio codec '%s'", what,
                          avcodec_get_name(id));
        goto fail;
    }
    if (idx < 0) {
        rc = am_set_error(AM_EAUDIO, "%s: no audio stream (format '%s')", what,
                          fmt->iformat->name);
        goto fail;
    }
    for (unsigned i = 0; i < fmt->nb_streams; i++)
        if ((int)i != idx) fmt->streams[i]->discard = AVDISCARD_ALL;
    AVStream *st = fmt->streams[idx];

    dec = avcodec_alloc_context3(codec);
    if (!dec) {
        rc = am_set_error(AM_ENOMEM, "%s: out of memory", what);
        goto fail;
    }
    ret = avcodec_parameters_to_context(dec, st->codecpar);
    dec->pkt_timebase = st->time_base; // as the CLI sets it
    if (ret >= 0) ret = avcodec_open2(dec, codec, NULL);
    if (ret < 0) {
        rc = am_set_error(av_code(ret), "%s: cannot open %s decoder (%s)", what, codec->name,
                          err_str(ret, eb));
        goto fail;
    }
    pkt = av_packet_alloc();
    frame = av_frame_alloc();
    if (!pkt || !frame) {
        rc = am_set_error(AM_ENOMEM, "%s: out of memory", what);
        goto fail;
    }

    for (;;) {
        ret = av_read_frame(fmt, pkt);
        if (ret == AVERROR(ENOMEM)) {
            rc = am_set_error(AM_ENOMEM, "%s: out of memory while demuxing", what);
            goto fail;
        }
        if (ret < 0) { // EOF, or damage/truncation: the CLI also ends the input here
            if (ret != AVERROR_EOF) read_err = ret;
            break;
        }
        if (pkt->stream_index == idx) {
            ret = avcodec_send_packet(dec, pkt);
            if (ret == AVERROR(EAGAIN)) { // not expected after a full drain; retry once
                if ((rc = drain(&c, dec, frame))) goto fail;
                ret = avcodec_send_packet(dec, pkt);
            }
            if (ret == AVERROR(ENOMEM)) {
                rc = am_set_error(AM_ENOMEM, "%s: out of memory while decoding", what);
                goto fail;
            }
            if (ret < 0) {
                c.n_bad++;
                c.last_bad = ret;
            }
        }
        av_packet_unref(pkt);
        if ((rc = drain(&c, dec, frame))) goto fail;
    }
    if ((ret = avcodec_send_packet(dec, NULL)) >= 0 && (rc = drain(&c, dec, frame))) goto fail;
    if (c.swr && (rc = run_swr(&c, NULL, 0))) goto fail;

    if (c.n == 0) {
        if (c.n_bad)
            rc = am_set_error(AM_EAUDIO, "%s: audio is empty (%d packets failed to decode: %s)",
                              what, c.n_bad, err_str(c.last_bad, eb));
        else if (read_err)
            rc = am_set_error(AM_EAUDIO, "%s: audio is empty (read error: %s)", what,
                              err_str(read_err, eb));
        else
            rc = am_set_error(AM_EAUDIO, "%s: audio is empty", what);
        goto fail;
    }
    float *shrunk = realloc(c.samples, c.n * sizeof(float));
    *out = shrunk ? shrunk : c.samples;
    *n_out = c.n;
    c.samples = NULL;
fail:
    av_frame_free(&frame);
    av_packet_free(&pkt);
    avcodec_free_context(&dec);
    avformat_close_input(&fmt); // AVFMT_FLAG_CUSTOM_IO: leaves pb to the caller
    av_dict_free(&opts);
    conv_free(&c);
    return rc;
}

// Common argument checks; clears the outputs.
static int check_out(float **out, size_t *n_out) {
    if (!out || !n_out) return am_set_error(AM_EINVAL, "audio: NULL output argument");
    *out = NULL;
    *n_out = 0;
    return 0;
}

// ---------------------------------------------------------------- public entry points
int am_audio_decode_file(const char *path, const am_audio_params *p, float **out, size_t *n_out) {
    AVIOContext *pb = NULL;
    AVDictionary *opts = NULL;
    char *url = NULL, *what = NULL;
    char eb[AV_ERROR_MAX_STRING_SIZE];
    size_t max_samples = SIZE_MAX, len;
    int rc, ret;

    if ((rc = check_out(out, n_out))) goto fail;
    if (!path || !*path) {
        rc = am_set_error(AM_EINVAL, "audio: NULL or empty path");
        goto fail;
    }
    if ((rc = resolve_limit(p, &max_samples))) goto fail;
    len = strlen(path);
    url = malloc(len + 6);
    what = malloc(len + 3);
    if (!url || !what) {
        rc = am_set_error(AM_ENOMEM, "audio: out of memory");
        goto fail;
    }
    // "file:" prefix: the path is taken literally even if it contains ':'.
    memcpy(url, "file:", 5);
    memcpy(url + 5, path, len + 1);
    snprintf(what, len + 3, "'%s'", path);
    av_dict_set(&opts, "protocol_whitelist", "file", 0);
    ret = avio_open2(&pb, url, AVIO_FLAG_READ, NULL, &opts);
    if (ret < 0) {
        rc = am_set_error(ret == AVERROR(ENOMEM) ? AM_ENOMEM : AM_EIO, "cannot open %s: %s", what,
                          err_str(ret, eb));
        goto fail;
    }
    if (avio_size(pb) == 0) {
        rc = am_set_error(AM_EAUDIO, "%s: file is empty (0 bytes)", what);
        goto fail;
    }
    rc = decode_stream(pb, path, what, max_samples, p ? p->max_seconds : 0.0, out, n_out);
fail:
    avio_closep(&pb);
    av_dict_free(&opts);
    free(url);
    free(what);
    return rc;
}

int am_audio_decode_memory(const void *data, size_t size, const am_audio_params *p, float **out,
                           size_t *n_out) {
    mem_reader m = {.data = data, .size = size, .pos = 0};
    AVIOContext *pb = NULL;
    unsigned char *iobuf = NULL;
    size_t max_samples = SIZE_MAX;
    int rc;

    if ((rc = check_out(out, n_out))) goto fail;
    if (!data && size) {
        rc = am_set_error(AM_EINVAL, "audio: NULL data with size %zu", size);
        goto fail;
    }
    if (size == 0) {
        rc = am_set_error(AM_EAUDIO, "audio buffer is empty (0 bytes)");
        goto fail;
    }
    if ((uint64_t)size > (uint64_t)INT64_MAX) {
        rc = am_set_error(AM_ERANGE, "audio buffer too large");
        goto fail;
    }
    if ((rc = resolve_limit(p, &max_samples))) goto fail;
    iobuf = av_malloc(IO_BUFFER_SIZE);
    if (iobuf) pb = avio_alloc_context(iobuf, IO_BUFFER_SIZE, 0, &m, mem_read, NULL, mem_seek);
    if (!pb) {
        rc = am_set_error(AM_ENOMEM, "audio: out of memory");
        goto fail;
    }
    iobuf = NULL; // owned by pb now (libavformat may replace it)
    char what[64];
    snprintf(what, sizeof what, "memory buffer (%zu bytes)", size);
    rc = decode_stream(pb, "", what, max_samples, p ? p->max_seconds : 0.0, out, n_out);
fail:
    if (pb) av_freep(&pb->buffer);
    avio_context_free(&pb);
    av_free(iobuf);
    return rc;
}

// ---------------------------------------------------------------- encoding
static void put_le(unsigned char *p, uint32_t v, int bytes) {
    for (int i = 0; i < bytes; i++) p[i] = (unsigned char)(v >> (8 * i));
}

int am_audio_wav_encode(const float *samples, size_t n, unsigned char **out, size_t *len) {
    if (!out || !len || (n && !samples) || n > ((size_t)1 << 31))
        return am_set_error(AM_EINVAL, "am_audio_wav_encode: invalid arguments");
    const size_t data = n * 2;
    unsigned char *w = malloc(44 + data);
    if (!w) return am_set_error(AM_ENOMEM, "out of memory for a WAV image");
    memcpy(w, "RIFF", 4);
    put_le(w + 4, (uint32_t)(36 + data), 4);
    memcpy(w + 8, "WAVEfmt ", 8);
    put_le(w + 16, 16, 4);     // fmt chunk size
    put_le(w + 20, 1, 2);      // PCM
    put_le(w + 22, 1, 2);      // mono
    put_le(w + 24, AM_SAMPLE_RATE, 4);
    put_le(w + 28, AM_SAMPLE_RATE * 2, 4); // bytes per second
    put_le(w + 32, 2, 2);      // block align
    put_le(w + 34, 16, 2);     // bits per sample
    memcpy(w + 36, "data", 4);
    put_le(w + 40, (uint32_t)data, 4);
    for (size_t i = 0; i < n; i++) {
        const float v = samples[i] * 32768.0f;
        const long q = v >= 32767.0f ? 32767 : v <= -32768.0f ? -32768 : lrintf(v);
        put_le(w + 44 + 2 * i, (uint32_t)(uint16_t)(int16_t)q, 2);
    }
    *out = w;
    *len = 44 + data;
    return 0;
}
