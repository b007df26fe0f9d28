from pathlib import Path

import pytest

from config.settings import DEV_JWT_SECRET, Environment, SettingsError, load_settings

GOOD_SECRET = "k" * 48
PROD_OK = {
    "ENVIRONMENT": "production",
    "JWT_SECRET_KEY": GOOD_SECRET,
    "DATABASE_URL": "postgresql://app:Vq8-long-db-password@db.internal:5432/insurance",
    "REDIS_URL": "redis://:Zr4-long-redis-password@cache.internal:6379/0",
}


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
    assert load_settings(tmp_path, environ={"ENVIRONMENT": "staging"}).db_pool_size == 17
    assert load_settings(tmp_path, environ={}).db_pool_size == 3


def test_environment_can_come_from_dot_env(tmp_path):
    write(tmp_path / ".env", ENVIRONMENT="staging")
    write(tmp_path / ".env.staging", KAFKA_PARTITIONS="12")
    settings = load_settings(tmp_path, environ={})
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


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"JWT_SECRET_KEY": None}, "JWT_SECRET_KEY"),
        ({"JWT_SECRET_KEY": DEV_JWT_SECRET}, "JWT_SECRET_KEY"),
        ({"JWT_SECRET_KEY": "short"}, "JWT_SECRET_KEY"),
        ({"DATABASE_URL": "postgresql://postgres@db:5432/insurance"}, "DATABASE_URL"),
        ({"DATABASE_URL": "postgresql://app:password@db:5432/insurance"}, "DATABASE_URL"),
        ({"DATABASE_URL": "postgresql://postgres:postgres@db:5432/insurance"}, "DATABASE_URL"),
        ({"REDIS_URL": "redis://cache:6379/0"}, "REDIS_URL"),
        ({"REDIS_URL": "redis://:changeme@cache:6379/0"}, "REDIS_URL"),
        ({"DEBUG": "true"}, "DEBUG"),
    ],
)
def test_production_refuses_missing_or_development_secrets_naming_the_key(tmp_path, change, key):
    environ = {k: v for k, v in {**PROD_OK, **change}.items() if v is not None}
    with pytest.raises(SettingsError) as caught:
        load_settings(tmp_path, environ=environ)
    message = str(caught.value)
    assert message.startswith(f"{key}:")
    assert "\n" not in message


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
