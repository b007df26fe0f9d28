from pathlib import Path

import pytest

from config.fail_closed import DEV_JWT_SECRET, DEV_MODEL_SIGNING_KEY, SettingsError
from config.settings import Environment, load_settings

GOOD_SECRET = "k" * 48
PROD_OK = {
    "ENVIRONMENT": "production",
    "JWT_SECRET_KEY": GOOD_SECRET,
    "DATABASE_URL": "postgresql://app:Vq8-long-db-password@db.internal:5432/insurance",
    "REDIS_URL": "rediss://:Zr4-long-redis-password@cache.internal:6380/0",
    "DATABASE_SSLMODE": "verify-full",
    "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
    "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
    "KAFKA_SASL_USERNAME": "autoins",
    "KAFKA_SASL_PASSWORD": "Kf9-long-kafka-password",
    "MODEL_SIGNING_KEY": "m" * 40,
}
SECRETS = {k: v for k, v in PROD_OK.items() if k != "ENVIRONMENT"}


def write(path: Path, **values: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{k}={v}\n" for k, v in values.items()))


def test_development_starts_with_defaults_and_no_files(tmp_path):
    settings = load_settings(tmp_path, environ={})
    assert settings.environment is Environment.DEVELOPMENT
    assert settings.jwt_secret_key.get_secret_value() == DEV_JWT_SECRET


def test_environment_picks_its_own_env_file(tmp_path):
    write(tmp_path / ".env.staging", DB_POOL_SIZE="17")
    write(tmp_path / ".env.development", DB_POOL_SIZE="3")
    assert load_settings(tmp_path, environ={**SECRETS, "ENVIRONMENT": "staging"}).db_pool_size == 17
    assert load_settings(tmp_path, environ={}).db_pool_size == 3


def test_environment_can_come_from_dot_env(tmp_path):
    write(tmp_path / ".env", ENVIRONMENT="staging")
    write(tmp_path / ".env.staging", KAFKA_PARTITIONS="12")
    settings = load_settings(tmp_path, environ=SECRETS)
    assert settings.environment is Environment.STAGING
    assert settings.kafka_partitions == 12


def test_process_environment_beats_files(tmp_path):
    write(tmp_path / ".env.development", NUM_SHARDS="3")
    assert load_settings(tmp_path, environ={"NUM_SHARDS": "6"}).num_shards == 6


def test_stack_env_beats_environment_file_outside_production(tmp_path):
    write(tmp_path / ".env.development", REDIS_URL="redis://127.0.0.1:6379/0")
    write(tmp_path / ".autoins" / "stack.env", REDIS_URL="redis://127.0.0.1:6390/0")
    assert load_settings(tmp_path, environ={}).redis_url == "redis://127.0.0.1:6390/0"


def test_production_never_reads_the_local_stack_file(tmp_path):
    write(tmp_path / ".autoins" / "stack.env", DATABASE_URL="postgresql://postgres@127.0.0.1:5432/autoins")
    settings = load_settings(tmp_path, environ=PROD_OK)
    assert settings.database_url == PROD_OK["DATABASE_URL"]


def test_production_with_real_secrets_starts(tmp_path):
    settings = load_settings(tmp_path, environ=PROD_OK)
    assert settings.is_production


def test_production_refuses_debug():
    with pytest.raises(SettingsError, match=r"^DEBUG: production refuses debug=true$"):
        load_settings(Path("/nonexistent"), environ={**PROD_OK, "DEBUG": "true"})


def test_production_env_file_shipped_in_the_repo_refuses_to_start_without_secrets():
    root = Path(__file__).resolve().parents[2]
    with pytest.raises(SettingsError, match=r"^JWT_SECRET_KEY:"):
        load_settings(root, environ={"ENVIRONMENT": "production"})


@pytest.mark.parametrize(
    ("environ", "key"),
    [
        ({"DB_POOL_SIZE": "many"}, "DB_POOL_SIZE"),
        ({"DB_POOL_SIZE": "0"}, "DB_POOL_SIZE"),
        ({"RETENTION_MONTHS": "0"}, "RETENTION_MONTHS"),
        ({"DATABASE_URL": "mysql://root@localhost/x"}, "DATABASE_URL"),
        ({"REDIS_URL": "http://localhost:6379"}, "REDIS_URL"),
        ({"ENVIRONMENT": "prod"}, "ENVIRONMENT"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_key(tmp_path, environ, key):
    with pytest.raises(SettingsError) as caught:
        load_settings(tmp_path, environ=environ)
    assert str(caught.value).startswith(f"{key}:")
    assert "\n" not in str(caught.value)


def test_settings_are_frozen(tmp_path):
    settings = load_settings(tmp_path, environ={})
    with pytest.raises(ValueError):
        settings.num_shards = 9  # type: ignore[misc]


def test_redacted_masks_secrets_and_passwords(tmp_path):
    shown = load_settings(tmp_path, environ=PROD_OK).redacted()
    text = repr(shown)
    assert GOOD_SECRET not in text
    assert "Vq8-long-db-password" not in text and "Zr4-long-redis-password" not in text
    assert shown["database_url"] == "postgresql://app:****@db.internal:5432/insurance"


def test_with_overrides_validates(tmp_path):
    settings = load_settings(tmp_path, environ={})
    assert settings.with_overrides(num_shards=2).num_shards == 2
    with pytest.raises(ValueError):
        settings.with_overrides(num_shards=0)


# -- fail closed outside development on loopback (docs/SECURITY.md §1) --------------------------------------

STAGING_OK = {**PROD_OK, "ENVIRONMENT": "staging"}
WEAK = [
    ({"JWT_SECRET_KEY": None}, "JWT_SECRET_KEY"),
    ({"JWT_SECRET_KEY": DEV_JWT_SECRET}, "JWT_SECRET_KEY"),
    ({"JWT_SECRET_KEY": "short"}, "JWT_SECRET_KEY"),
    ({"JWT_SECRET_KEY": "s" * 31}, "JWT_SECRET_KEY"),
    ({"JWT_ALGORITHM": "HS512", "JWT_SECRET_KEY": "s" * 63}, "JWT_SECRET_KEY"),  # RFC 7518 §3.2: ≥ hash size
    ({"DATABASE_URL": "postgresql://postgres@db:5432/insurance"}, "DATABASE_URL"),
    ({"DATABASE_URL": "postgresql://app@db:5432/insurance"}, "DATABASE_URL"),
    ({"DATABASE_URL": "postgresql://app:password@db:5432/insurance"}, "DATABASE_URL"),
    ({"DATABASE_URL": "postgresql://postgres:postgres@db:5432/insurance"}, "DATABASE_URL"),
    ({"DATABASE_URL": "postgresql://app@db:5432/insurance?password=password"}, "DATABASE_URL"),
    ({"REDIS_URL": "rediss://cache:6379/0"}, "REDIS_URL"),
    ({"REDIS_URL": "rediss://:changeme@cache:6379/0"}, "REDIS_URL"),
    ({"REDIS_URL": "rediss://:password@cache:6379/0"}, "REDIS_URL"),
    ({"OPERATOR_TOKEN": "short"}, "OPERATOR_TOKEN"),
    ({"MODEL_SIGNING_KEY": None}, "MODEL_SIGNING_KEY"),
    ({"MODEL_SIGNING_KEY": DEV_MODEL_SIGNING_KEY}, "MODEL_SIGNING_KEY"),
    ({"MODEL_SIGNING_KEY": "m" * 31}, "MODEL_SIGNING_KEY"),
    # plaintext links (docs/SECURITY.md §6)
    ({"KAFKA_SECURITY_PROTOCOL": None}, "KAFKA_SECURITY_PROTOCOL"),
    ({"KAFKA_SECURITY_PROTOCOL": "PLAINTEXT"}, "KAFKA_SECURITY_PROTOCOL"),
    ({"KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT"}, "KAFKA_SECURITY_PROTOCOL"),
    ({"DATABASE_SSLMODE": None}, "DATABASE_URL"),
    ({"DATABASE_SSLMODE": "prefer"}, "DATABASE_SSLMODE"),
    ({"DATABASE_SSLMODE": "disable"}, "DATABASE_SSLMODE"),
    ({"DATABASE_SSLMODE": None, "DATABASE_URL": PROD_OK["DATABASE_URL"] + "?sslmode=allow"}, "DATABASE_URL"),
    ({"REDIS_URL": "redis://:Zr4-long-redis-password@cache.internal:6379/0"}, "REDIS_URL"),
]


@pytest.mark.parametrize(("change", "key"), WEAK)
@pytest.mark.parametrize("environment", ["staging", "production"])
def test_staging_and_production_refuse_weak_secrets_in_one_line_naming_the_key(tmp_path, environment, change, key):
    environ = {k: v for k, v in {**PROD_OK, "ENVIRONMENT": environment, **change}.items() if v is not None}
    with pytest.raises(SettingsError) as caught:
        load_settings(tmp_path, environ=environ)
    message = str(caught.value)
    assert message.startswith(f"{key}: {environment} refuses"), message
    assert "\n" not in message


@pytest.mark.parametrize(("change", "key"), WEAK)
@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "api.example.com"])
def test_development_bound_beyond_loopback_refuses_them_too(tmp_path, host, change, key):
    environ = {k: v for k, v in {**PROD_OK, "ENVIRONMENT": "development", "HTTP_HOST": host, **change}.items()
               if v is not None}
    with pytest.raises(SettingsError) as caught:
        load_settings(tmp_path, environ=environ)
    assert str(caught.value).startswith(f"{key}: development bound to {host} refuses"), str(caught.value)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "localhost", "::1"])
def test_development_on_loopback_runs_on_the_local_defaults(tmp_path, host):
    settings = load_settings(tmp_path, environ={"HTTP_HOST": host})
    assert settings.is_local_development
    assert settings.jwt_secret_key.get_secret_value() == DEV_JWT_SECRET
    assert settings.database_url == "postgresql://postgres@127.0.0.1:5432/autoins"


def test_the_repos_development_file_refuses_to_start_when_bound_to_every_interface():
    root = Path(__file__).resolve().parents[2]
    with pytest.raises(SettingsError, match=r"^JWT_SECRET_KEY: development bound to 0\.0\.0\.0 refuses"):
        load_settings(root, environ={"ENVIRONMENT": "development", "HTTP_HOST": "0.0.0.0"})


def test_staging_with_real_secrets_starts(tmp_path):
    settings = load_settings(tmp_path, environ=STAGING_OK)
    assert settings.environment is Environment.STAGING and not settings.is_local_development


def test_without_environment_a_host_bound_beyond_loopback_must_name_it(tmp_path):
    with pytest.raises(SettingsError, match=r"^ENVIRONMENT: not set while HTTP_HOST=0\.0\.0\.0"):
        load_settings(tmp_path, environ={k: v for k, v in {**PROD_OK, "HTTP_HOST": "0.0.0.0"}.items()
                                         if k != "ENVIRONMENT"})
    assert load_settings(tmp_path, environ={**PROD_OK, "ENVIRONMENT": "staging", "HTTP_HOST": "0.0.0.0"})


@pytest.mark.parametrize("algorithm", ["none", "HS1", "PS256", "EdDSA", "hs256"])
def test_only_hmac_rsa_and_ecdsa_jwt_algorithms_are_allowed(tmp_path, algorithm):
    with pytest.raises(SettingsError, match=r"^JWT_ALGORITHM: .* is not allowed"):
        load_settings(tmp_path, environ={"JWT_ALGORITHM": algorithm})


def pem_pair(kind: str) -> tuple[str, str]:
    """(private, public) PEM keys: kind "rsa", "ec" (P-256) or "p384"."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    curves = {"ec": ec.SECP256R1, "p384": ec.SECP384R1}
    key = rsa.generate_private_key(65537, 2048) if kind == "rsa" else ec.generate_private_key(curves[kind]())
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return private, public


@pytest.mark.parametrize(("algorithm", "kind"), [("RS256", "rsa"), ("ES256", "ec")])
def test_rsa_and_ecdsa_need_a_private_and_a_public_key_of_their_family(tmp_path, algorithm, kind):
    private, public = pem_pair(kind)
    base = {**PROD_OK, "JWT_ALGORITHM": algorithm, "JWT_SECRET_KEY": private}
    assert load_settings(tmp_path, environ={**base, "JWT_PUBLIC_KEY": public}).jwt_algorithm == algorithm
    with pytest.raises(SettingsError, match=r"^JWT_PUBLIC_KEY: "):
        load_settings(tmp_path, environ=base)
    with pytest.raises(SettingsError, match=r"^JWT_PUBLIC_KEY: "):  # the private key where the public one goes
        load_settings(tmp_path, environ={**base, "JWT_PUBLIC_KEY": private})
    with pytest.raises(SettingsError, match=r"^JWT_SECRET_KEY: "):
        load_settings(tmp_path, environ={**base, "JWT_SECRET_KEY": GOOD_SECRET, "JWT_PUBLIC_KEY": public})
    other = pem_pair("ec" if kind == "rsa" else "rsa")[1]
    with pytest.raises(SettingsError, match=r"^JWT_PUBLIC_KEY: "):
        load_settings(tmp_path, environ={**base, "JWT_PUBLIC_KEY": other})


def test_docs_are_off_in_production_unless_enabled(tmp_path):
    assert load_settings(tmp_path, environ={}).docs_enabled
    assert load_settings(tmp_path, environ=STAGING_OK).docs_enabled
    assert not load_settings(tmp_path, environ=PROD_OK).docs_enabled
    assert load_settings(tmp_path, environ={**PROD_OK, "API_DOCS_ENABLED": "true"}).docs_enabled


def test_the_operator_token_is_masked(tmp_path):
    token = "o" * 40
    shown = load_settings(tmp_path, environ={**PROD_OK, "OPERATOR_TOKEN": token}).redacted()
    assert token not in repr(shown) and shown["operator_token"] == "**********"


def test_the_cli_prints_a_refusal_as_one_line_without_a_traceback(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from autoins.cli import app

    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["config"], env={"ENVIRONMENT": "staging", "JWT_SECRET_KEY": "short"})
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == ["configuration error: JWT_SECRET_KEY: staging refuses the committed default or a secret "
                     "under 32 characters (only development bound to loopback may use them)"], result.stderr
    assert "Traceback" not in result.output
