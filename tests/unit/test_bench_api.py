from autoins.bench.api import cache_counters, cache_hit_rate, percentiles, summarize_phase
from autoins.bench.api_report import json_line, section_markdown


def test_percentiles_interpolate_exact_float_timings():
    samples = [float(x) for x in range(1, 101)]  # 1..100 ms
    assert percentiles(samples) == {"p50_ms": 50.5, "p95_ms": 95.05, "p99_ms": 99.01}
    assert percentiles([]) == {"p50_ms": None, "p95_ms": None, "p99_ms": None}


def test_summary_keeps_login_and_noop_apart_and_counts_every_error():
    raw = {"timings": {"/api/v1/auth/login": [30.0], "noop": [1.0, 2.0], "/api/v1/drivers/me": [2.0, 4.0]},
           "errors": {"/api/v1/drivers/me": 1, "/api/v1/auth/login": 1}}
    summary = summarize_phase(raw, elapsed_s=2.0)
    assert set(summary["endpoints"]) == {"/api/v1/drivers/me"}
    assert summary["endpoints"]["/api/v1/drivers/me"]["rps"] == 1.0
    assert summary["noop"]["requests"] == 2
    assert summary["errors"] == 2 and summary["login_errors"] == 1


def test_cache_hit_rate_counts_l1_and_l2_hits_over_l1_lookups_from_prometheus_text():
    before = cache_counters('ray_cache_hits_total{cache_type="l1",Component="x"} 10\n'
                            'ray_cache_misses_total{cache_type="l1"} 5\n# HELP ray_cache_hits_total x\n')
    after = cache_counters('ray_cache_hits_total{cache_type="l1",Component="x"} 90\n'
                           'ray_cache_hits_total{cache_type="l2",Component="y"} 8\n'
                           'ray_cache_misses_total{cache_type="l1"} 25\n'
                           'ray_cache_misses_total{cache_type="l2"} 12\n')
    # 80 L1 hits + 20 L1 misses = 100 lookups; 80 + 8 answered from a cache
    assert cache_hit_rate(before, after) == 0.88
    assert cache_hit_rate(after, after) is None


def test_json_line_leads_with_the_issue_keys_and_markdown_has_its_markers():
    endpoint = {"p50_ms": 1.0, "p95_ms": 2.0, "p99_ms": 3.0, "rps": 10.0, "errors": 0, "requests": 100}
    result = {"endpoints": {"/api/v1/drivers/me": endpoint}, "noop": {**endpoint, "p95_ms": 1.5},
              "errors": 0, "cache_hit_rate": 0.9, "p95_over_noop": {"/api/v1/drivers/me": 1.33}, "users": 100,
              "duration_s": 60, "date": "d", "command": "autoins bench api", "shape": {"api_replicas": 2},
              "machine": {"nproc": 2, "cpu_model": "c", "memory_gib": 24, "python": "3.11", "ray": "2.60",
                          "postgres": "PostgreSQL 15", "loadavg_1m_before": 0.1}}
    line = json_line(result)
    assert list(line)[:4] == ["endpoints", "noop", "errors", "cache_hit_rate"]
    assert line["endpoints"]["/api/v1/drivers/me"] == {k: endpoint[k] for k in ("p50_ms", "p95_ms", "p99_ms", "rps",
                                                                                  "errors")}
    assert set(line["noop"]) == {"p50_ms", "p95_ms", "p99_ms"}
    text = section_markdown(result)
    assert text.startswith("<!-- bench:api begin -->") and text.endswith("<!-- bench:api end -->")
    assert "1.33" in text
