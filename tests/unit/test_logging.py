import json

import structlog

from config.logging import configure_logging, get_logger, request_context, request_id_var


def test_log_lines_are_json_and_carry_the_request_id(capsys):
    configure_logging("INFO", json=True, force=True)
    log = get_logger("test")
    with request_context("req-123") as rid:
        log.info("order_placed", amount_cents=120)
    log.info("outside")
    lines = [json.loads(line) for line in capsys.readouterr().err.strip().splitlines()]
    assert rid == "req-123"
    assert lines[0]["event"] == "order_placed"
    assert lines[0]["request_id"] == "req-123"
    assert lines[0]["level"] == "info"
    assert "timestamp" in lines[0]
    assert "request_id" not in lines[1]
    assert request_id_var.get() is None


def test_request_context_makes_an_id_when_none_is_given():
    with request_context() as rid:
        assert request_id_var.get() == rid
        assert len(rid) == 32


def test_levels_below_the_configured_one_are_dropped(capsys):
    configure_logging("WARNING", json=True, force=True)
    get_logger("test").info("quiet")
    get_logger("test").warning("loud")
    err = capsys.readouterr().err
    assert "loud" in err and "quiet" not in err
    structlog.reset_defaults()
    configure_logging("INFO", json=True, force=True)
