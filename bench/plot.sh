#!/usr/bin/env bash
# The report of one bench/run.sh run: reads RUN_DIR/*-r<rep>.json (bench_load --json objects with
# scenario, server and rep) and RUN_DIR/machine.json, writes RUN_DIR/report.md and, with gnuplot,
# RUN_DIR/throughput.png and RUN_DIR/p95.png (concurrency 1, 4, 16: the single-11s, c4 and c16
# scenarios; lines for amanuensis batching on, batching off and whisper.cpp's server).
#
#   bench/plot.sh bench/results/20250101T000000Z
#
# Figures are medians over the reps of a scenario; errors are summed. A whisper.cpp comparison is
# "valid" when the mean tokens per request of both servers agree within 5 % (equal work).
set -euo pipefail
dir=${1:?usage: bench/plot.sh RUN_DIR}
command -v jq >/dev/null || { echo "bench/plot.sh: jq is needed" >&2; exit 1; }
machine="$dir/machine.json"
[ -f "$machine" ] || echo '{}' >"$machine"

# medians per scenario and server (the run files are SCENARIO-SERVER-rREP.json)
shopt -s nullglob
runs=("$dir"/*-r[0-9]*.json)
[ ${#runs[@]} -gt 0 ] || { echo "bench/plot.sh: no runs in $dir" >&2; exit 1; }
jq -s '
  def median: sort | if length == 0 then null
                     elif length % 2 == 1 then .[(length - 1) / 2]
                     else (.[length / 2 - 1] + .[length / 2]) / 2 end;
  map(select(.scenario != null))
  | group_by([.scenario, .server])
  | map({scenario: .[0].scenario, server: .[0].server, reps: length, concurrency: .[0].concurrency,
         requests: .[0].requests,
         clips: (.[0].clips | map(.seconds)),
         rps: (map(.requests_per_s) | median), aps: (map(.audio_s_per_s) | median),
         p50: (map(.latency_s.p50) | median), p95: (map(.latency_s.p95) | median),
         p99: (map(.latency_s.p99) | median),
         tok: (map(.tokens.mean // empty) | median), tps: (map(.tokens.per_s // empty) | median),
         errors: (map(.errors) | add),
         enc: (map(.stats.encoder_windows_per_batch // empty) | median),
         rows: (map(.stats.decoder_rows_per_step // empty) | median),
         qd: (map(.stats.queue_depth_mean // empty) | median)})' \
  "${runs[@]}" >"$dir/summary.json.tmp"
mv "$dir/summary.json.tmp" "$dir/summary.json"

# plot data: concurrency, req/s (on off wc), p95 (on off wc); "?" = not run
jq -r '
  def at($s; $v; $k): (map(select(.scenario == $s and .server == $v)) | .[0][$k]) // "?";
  . as $d
  | [["single-11s", 1], ["c4", 4], ["c16", 16]][]
  | . as [$s, $c]
  | [$c, ($d | at($s; "on"; "rps")), ($d | at($s; "off"; "rps")), ($d | at($s; "wc"; "rps")),
         ($d | at($s; "on"; "p95")), ($d | at($s; "off"; "p95")), ($d | at($s; "wc"; "p95"))]
  | select(.[1:] | any(. != "?"))
  | map(tostring) | join(" ")' "$dir/summary.json" >"$dir/plot.dat"

plots=""
if ! command -v gnuplot >/dev/null; then
  plots="(plots skipped: gnuplot not found; scripts/install-deps.sh installs gnuplot-nox)"
elif [ "$(wc -l <"$dir/plot.dat")" -lt 1 ]; then
  plots="(no plots: none of single, c4, c16 was run)"
else
  term=png
  gnuplot -e 'set terminal' 2>&1 | grep -q pngcairo && term=pngcairo
  wc_cols=$(awk '$4 != "?" {n++} END {print n + 0}' "$dir/plot.dat")
  for what in throughput p95; do
    if [ $what = throughput ]; then c=2; ylabel="requests per second"; title="Throughput vs concurrency"
    else c=5; ylabel="p95 latency (s)"; title="p95 latency vs concurrency"; fi
    wc_plot=""
    [ "$wc_cols" -gt 0 ] && wc_plot=", '$dir/plot.dat' using 1:$((c + 2)) with linespoints lw 2 pt 9 title 'whisper.cpp server'"
    gnuplot <<EOF
set terminal $term size 800,500
set output '$dir/$what.png'
set datafile missing '?'
set title '$title ($(jq -r '.model // "model"' "$machine" | sed "s/'//g"))'
set xlabel 'concurrent requests (11 s clip)'
set ylabel '$ylabel'
set logscale x 2
set xtics (1, 4, 16)
set xrange [0.8:20]
set yrange [0:*]
set key below
set grid
plot '$dir/plot.dat' using 1:$c with linespoints lw 2 pt 7 title 'amanuensis, batching on', \
     '$dir/plot.dat' using 1:$((c + 1)) with linespoints lw 2 pt 5 title 'amanuensis, batching off'$wc_plot
EOF
  done
  plots="![throughput vs concurrency](throughput.png) ![p95 latency vs concurrency](p95.png)"
fi

# the markdown
jq -r --arg plots "$plots" --slurpfile m "$machine" '
  def f($n): if . == null then "–" elif $n == 0 then round | tostring
             else (. * pow(10; $n) | round) as $i | ($i | fabs | tostring) as $s
             | ([range([0, $n + 1 - ($s | length)] | max)] | map("0") | join("")) + $s
             | (if $i < 0 then "-" else "" end) + .[:length - $n] + "." + .[length - $n:] end;
  def ratio($a; $b): if $a == null or $b == null or $b == 0 then null else $a / $b end;
  def x: if . == null then "–" else "\(f(2))x" end;
  def name: {on: "amanuensis, batching on", off: "amanuensis, batching off", wc: "whisper.cpp server"}[.];
  def desc: {"single-1s": "one request at a time, 1 s clip", "single-5s": "one request at a time, 5 s clip",
             "single-11s": "one request at a time, 11 s clip", c4: "4 concurrent requests, 11 s clip",
             c16: "16 concurrent requests, 11 s clip",
             mixed: "16 concurrent requests, clips of 1–30 s and one of 70 s, round-robin"}[.] // .;
  def valid($a; $b): if $a.tok == null or $b.tok == null then "not checked (no token counts)"
     elif (($a.tok - $b.tok) | fabs) <= 0.05 * ([$a.tok, $b.tok] | max)
     then "valid: tokens/request \($a.tok | f(1)) vs \($b.tok | f(1))"
     else "**not valid**: tokens/request \($a.tok | f(1)) vs \($b.tok | f(1)) differ by more than 5 %" end;
  $m[0] as $m | . as $d
  | ["single-1s", "single-5s", "single-11s", "c4", "c16", "mixed"] as $order
  | ($d | map(.scenario) | unique | sort_by(. as $s | ($order | index($s)) // 99)) as $scens
  | "# amanuensis benchmark report\n",
    "\($m.stamp // "") — \($m.cpu // "unknown CPU"), \($m.cores // "?") cores, \($m.threads // "?") threads; "
    + "measured in the same run: sgemm \($m.sgemm_gflops | f(0)) GFLOP/s, read bandwidth \($m.read_gbs | f(1)) GB/s "
    + "(bench_core --quick). Model: \($m.model // "?"). "
    + "Medians of \($m.reps // 1) rep(s)\(if $m.quick then " (QUICK smoke run: tiny request counts, not a measurement)" else "" end).\n",
    "Settings: temperature 0, no fallback, no timestamps, language en, response_format verbose_json; "
    + "tokens/request counts text tokens (ids below end-of-text). A whisper.cpp comparison is valid when both "
    + "sides produced the same tokens per request within 5 %.\n",
    "\($plots)\n",
    ($scens[] as $s
     | ($d | map(select(.scenario == $s))) as $rows
     | ($rows | map({key: .server, value: .}) | from_entries) as $r
     | "## \($s): \($s | desc)\n",
       "\($rows[0].requests) request(s) per run, concurrency \($rows[0].concurrency).\n",
       "| server | req/s | audio s/s | p50 s | p95 s | p99 s | tokens/request | tokens/s | errors | encoder windows/batch | decoder rows/step |",
       "|---|---|---|---|---|---|---|---|---|---|---|",
       ($rows | sort_by({on: 0, off: 1, wc: 2}[.server]) | .[]
        | "| \(.server | name) | \(.rps | f(2)) | \(.aps | f(1)) | \(.p50 | f(2)) | \(.p95 | f(2)) | \(.p99 | f(2)) "
          + "| \(.tok | f(1)) | \(.tps | f(0)) | \(.errors) | \(.enc | f(2)) | \(.rows | f(2)) |"),
       "",
       (if $r.on and $r.off then
          "- batching on / off: throughput \(ratio($r.on.rps; $r.off.rps) | x), p95 latency \(ratio($r.on.p95; $r.off.p95) | x)"
        else empty end),
       (if $r.wc and $r.on then
          "- amanuensis (batching on) / whisper.cpp: throughput \(ratio($r.on.rps; $r.wc.rps) | x), "
          + "p95 latency \(ratio($r.on.p95; $r.wc.p95) | x) — \(valid($r.on; $r.wc))"
        else empty end),
       (if $r.wc and $r.off then
          "- amanuensis (batching off) / whisper.cpp: throughput \(ratio($r.off.rps; $r.wc.rps) | x), "
          + "p95 latency \(ratio($r.off.p95; $r.wc.p95) | x) — \(valid($r.off; $r.wc))"
        else empty end),
       "")
' "$dir/summary.json" >"$dir/report.md"
