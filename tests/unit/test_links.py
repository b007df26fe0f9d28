"""TLS links to PostgreSQL, Redis and Kafka (docs/SECURITY.md §6): which settings refuse to start, and that
every client the system builds gets the TLS and SASL settings. Pure: no service is contacted here."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.links import postgres_dsn
from config.settings import Settings, SettingsError, load_settings
from storage.kafka.clients import admin_config, consumer_config, producer_config
from storage.redis.client import tls_options
from tests.unit.test_settings import PROD_OK

pytestmark = pytest.mark.unit
PLAINTEXT_PROD = {**PROD_OK, "REDIS_URL": "redis://:Zr4-long-redis-password@cache.internal:6379/0",
                  "KAFKA_SECURITY_PROTOCOL": "PLAINTEXT", "DATABASE_SSLMODE": "disable"}


def test_a_refusal_names_the_key_the_plaintext_and_the_way_out(tmp_path):
    with pytest.raises(SettingsError) as caught:
        load_settings(tmp_path, environ={**PROD_OK, "REDIS_URL": "redis://:Zr4-long-redis-password@cache:6379/0"})
    assert str(caught.value) == ("REDIS_URL: production refuses a plaintext link (Redis over redis://; use "
                                 "rediss://), or set ALLOW_PLAINTEXT_LINKS=true")


@pytest.mark.parametrize("environment", ["staging", "production"])
def test_allow_plaintext_links_lets_an_environment_start_on_plaintext_links(tmp_path, environment):
    environ = {**PLAINTEXT_PROD, "ENVIRONMENT": environment}
    with pytest.raises(SettingsError, match=r"^KAFKA_SECURITY_PROTOCOL: "):
        load_settings(tmp_path, environ=environ)
    settings = load_settings(tmp_path, environ={**environ, "ALLOW_PLAINTEXT_LINKS": "true"})
    assert settings.allow_plaintext_links and settings.kafka_security_protocol == "PLAINTEXT"


def test_development_on_loopback_needs_no_tls_nor_the_override(tmp_path):
    settings = load_settings(tmp_path, environ={})
    assert settings.is_local_development and not settings.allow_plaintext_links
    assert (settings.kafka_security_protocol, settings.database_dsn, settings.redis_url) == (
        "PLAINTEXT", "postgresql://postgres@127.0.0.1:5432/autoins", "redis://127.0.0.1:6379/0")


@pytest.mark.parametrize("sslmode", ["require", "verify-ca", "verify-full"])
def test_sslmode_in_the_database_url_is_tls_too(tmp_path, sslmode):
    url = f"postgresql://app:Vq8-long-db-password@db.internal:5432/insurance?sslmode={sslmode}"
    settings = load_settings(tmp_path, environ={**PROD_OK, "DATABASE_SSLMODE": "", "DATABASE_URL": url})
    assert settings.database_dsn == url


def test_a_unix_socket_to_redis_is_no_network_link(tmp_path):
    settings = load_settings(tmp_path, environ={**PROD_OK, "REDIS_URL": "unix:///run/redis.sock?password=Zr4-long"})
    assert tls_options(settings) == {}


def test_the_database_settings_replace_the_urls_own_tls_parameters():
    url = "postgresql://app:pw@db/insurance?application_name=x&sslmode=disable"
    assert postgres_dsn(url, "verify-full", "/etc/ssl/pg-ca.pem") == (
        "postgresql://app:pw@db/insurance?application_name=x&sslmode=verify-full&sslrootcert=%2Fetc%2Fssl%2Fpg-ca.pem")
    assert postgres_dsn(url, None, None) == url


def test_an_unknown_sslmode_is_one_line_naming_the_key(tmp_path):
    with pytest.raises(SettingsError, match=r"^DATABASE_SSLMODE: 'required' is not one of allow, disable, prefer, "
                                            r"require, verify-ca, verify-full$"):
        load_settings(tmp_path, environ={"DATABASE_SSLMODE": "required"})


@pytest.mark.parametrize("missing", ["KAFKA_SASL_MECHANISM", "KAFKA_SASL_USERNAME", "KAFKA_SASL_PASSWORD"])
def test_sasl_needs_mechanism_username_and_password_in_every_environment(tmp_path, missing):
    environ = {"KAFKA_SECURITY_PROTOCOL": "sasl_plaintext", "KAFKA_SASL_MECHANISM": "plain",
               "KAFKA_SASL_USERNAME": "autoins", "KAFKA_SASL_PASSWORD": "pw"}
    assert load_settings(tmp_path, environ=environ).kafka_sasl_mechanism == "PLAIN"  # development on loopback
    with pytest.raises(SettingsError, match=rf"^{missing}: KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT needs "):
        load_settings(tmp_path, environ={k: v for k, v in environ.items() if k != missing})


def test_every_kafka_client_gets_the_tls_and_sasl_settings(tmp_path):
    settings = load_settings(tmp_path, environ={**PROD_OK, "KAFKA_SSL_CA_LOCATION": "/etc/ssl/kafka-ca.pem"})
    expected = {"security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": "autoins",
                "sasl.password": "Kf9-long-kafka-password", "ssl.ca.location": "/etc/ssl/kafka-ca.pem"}
    for config in (producer_config(settings), consumer_config(settings), admin_config(settings)):
        assert expected.items() <= config.items()


def test_plaintext_kafka_clients_carry_no_sasl_settings():
    config = producer_config(Settings())
    assert config["security.protocol"] == "PLAINTEXT"
    assert not {key for key in config if key.startswith(("sasl.", "ssl."))}


def test_rediss_verifies_the_server_against_the_configured_ca():
    settings = Settings(redis_url="rediss://:pw@cache:6380/0", redis_ssl_ca_certs=Path("/etc/ssl/redis-ca.pem"))
    assert tls_options(settings) == {"ssl_cert_reqs": "required", "ssl_check_hostname": True,
                                     "ssl_ca_certs": "/etc/ssl/redis-ca.pem"}
    assert tls_options(Settings()) == {}


def test_the_kafka_password_and_the_model_signing_key_are_masked(tmp_path):
    shown = repr(load_settings(tmp_path, environ=PROD_OK).redacted())
    assert PROD_OK["KAFKA_SASL_PASSWORD"] not in shown and PROD_OK["MODEL_SIGNING_KEY"] not in shown
