-- wrk: print the 95th percentile latency (microseconds) and the non-2xx count in a line bench/run.py reads.
done = function(summary, latency, requests)
  io.write(string.format("BENCH p50=%d p95=%d requests=%d non2xx=%d errors=%d\n", latency:percentile(50),
    latency:percentile(95), summary.requests, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
