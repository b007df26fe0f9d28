from config.settings import load_settings
from storage.kafka.clients import consumer_config, producer_config


def test_consumer_leaves_offsets_to_us_and_joins_quickly(tmp_path):
    settings = load_settings(tmp_path, environ={"KAFKA_SESSION_TIMEOUT_MS": "6000"})
    config = consumer_config(settings)
    assert config["enable.auto.commit"] is False
    assert config["enable.auto.offset.store"] is False
    assert config["session.timeout.ms"] == 6000
    assert config["group.id"] == settings.kafka_consumer_group


def test_producer_is_idempotent_and_acks_all(tmp_path):
    config = producer_config(load_settings(tmp_path, environ={}))
    assert config["enable.idempotence"] is True
    assert config["acks"] == "all"
