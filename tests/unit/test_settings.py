from __future__ import annotations

from pathlib import Path

import pytest

from app.settings import CONFIG_DIR, SettingsError, load_settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in [k for k in os.environ if k.startswith("RAGENT_")]:
        monkeypatch.delenv(key)


def test_default_profile_is_embedded_and_offline() -> None:
    s = load_settings()
    assert s.profile == "default"
    assert s.llm.base_url is None
    assert s.embed.provider == "local"
    assert (s.retrieval.vector_backend, s.retrieval.keyword_backend) == ("embedded", "embedded")
    assert s.checkpoint.backend == "sqlite"
    assert s.data_dir == (Path.cwd() / ".ragent").resolve()


def test_production_profile_names_distributed_engines(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAGENT_PROFILE", "production")
    s = load_settings()
    assert s.llm.base_url and s.retrieval.weaviate_url and s.retrieval.elasticsearch_url
    assert s.retrieval.vector_backend == "weaviate"
    assert s.retrieval.keyword_backend == "elasticsearch"
    assert s.checkpoint.backend == "redis"


def test_environment_overrides_nested_and_top_level_keys(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("RAGENT_LLM_BASE_URL", "http://127.0.0.1:8000/v1")
    monkeypatch.setenv("RAGENT_LLM_TIMEOUT_S", "2.5")
    monkeypatch.setenv("RAGENT_LIMITS_MAX_TOOL_STEPS", "3")
    monkeypatch.setenv("RAGENT_DATA_DIR", str(tmp_path / "d"))
    s = load_settings()
    assert s.llm.base_url == "http://127.0.0.1:8000/v1"
    assert s.llm.timeout_s == 2.5
    assert s.limits.max_tool_steps == 3
    assert s.data_dir == tmp_path / "d"
    # Keys the environment did not touch keep the file's values.
    assert s.llm.max_retries == 2


def test_environment_beats_the_config_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("llm:\n  timeout_s: 5\n  max_retries: 4\n")
    monkeypatch.setenv("RAGENT_LLM_TIMEOUT_S", "7")
    s = load_settings(cfg)
    assert (s.llm.timeout_s, s.llm.max_retries) == (7, 4)


@pytest.mark.parametrize(
    ("env", "value", "key"),
    [
        ("RAGENT_LLM_TIMEOUT_S", "abc", "llm.timeout_s"),
        ("RAGENT_LLM_TIMEOUT_S", "-1", "llm.timeout_s"),
        ("RAGENT_CHECKPOINT_BACKEND", "postgres", "checkpoint.backend"),
        ("RAGENT_INGEST_CHUNK_TOKENS", "8", "ingest.chunk_tokens"),
        ("RAGENT_INGEST_WORKERS", "-1", "ingest.workers"),
        ("RAGENT_TENANT_ID", "", "tenant_id"),
    ],
)
def test_bad_value_names_the_key(
    monkeypatch: pytest.MonkeyPatch, env: str, value: str, key: str
) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(SettingsError) as err:
        load_settings()
    message = str(err.value)
    assert f"'{key}" in message
    assert "\n" not in message


def test_unknown_key_in_file_is_rejected(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("llm:\n  temprature: 0.2\n")
    with pytest.raises(SettingsError, match=r"llm\.temprature"):
        load_settings(cfg)


def test_malformed_yaml_names_file_and_line(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("llm:\n  model: [unclosed\n")
    with pytest.raises(SettingsError, match=r"malformed YAML in config .*bad\.yaml line \d+"):
        load_settings(cfg)


def test_missing_config_and_unknown_profile(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SettingsError, match="cannot read config"):
        load_settings("/nonexistent/ragent.yaml")
    monkeypatch.setenv("RAGENT_PROFILE", "nope")
    with pytest.raises(SettingsError, match=r"unknown profile .nope. in .* .known: default, pro"):
        load_settings()


def test_remote_engines_require_urls(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("retrieval:\n  vector_backend: weaviate\n")
    with pytest.raises(SettingsError, match="weaviate_url is required"):
        load_settings(cfg)


def test_weaviate_grpc_port_is_a_setting(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert load_settings().retrieval.weaviate_grpc_port == 50051  # Weaviate's default
    monkeypatch.setenv("RAGENT_PROFILE", "production")
    assert load_settings().retrieval.weaviate_grpc_port == 50051
    monkeypatch.setenv("RAGENT_RETRIEVAL_WEAVIATE_GRPC_PORT", "50151")
    assert load_settings().retrieval.weaviate_grpc_port == 50151
    cfg = tmp_path / "c.yaml"
    cfg.write_text("retrieval:\n  weaviate_grpc_port: 6000\n")
    monkeypatch.delenv("RAGENT_RETRIEVAL_WEAVIATE_GRPC_PORT")
    assert load_settings(cfg).retrieval.weaviate_grpc_port == 6000
    for bad in ("0", "65536", "grpc"):
        monkeypatch.setenv("RAGENT_RETRIEVAL_WEAVIATE_GRPC_PORT", bad)
        with pytest.raises(SettingsError, match=r"'retrieval\.weaviate_grpc_port"):
            load_settings()


def test_every_shipped_config_loads() -> None:
    for path in CONFIG_DIR.glob("*.yaml"):
        load_settings(path)


def test_config_dir_can_be_moved(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "edge.yaml").write_text("tenant_id: edge\n")
    monkeypatch.setenv("RAGENT_CONFIG_DIR", str(tmp_path))
    monkeypatch.setenv("RAGENT_PROFILE", "edge")
    assert load_settings().tenant_id == "edge"


def test_overlap_must_be_below_an_explicit_chunk_size(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAGENT_INGEST_CHUNK_TOKENS", "100")
    monkeypatch.setenv("RAGENT_INGEST_CHUNK_OVERLAP", "500")
    with pytest.raises(SettingsError, match="chunk_overlap must be smaller"):
        load_settings()


@pytest.mark.parametrize("section", ["llm", "embed", "rerank"])
def test_secrets_in_a_config_file_are_refused(
    section: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(f"{section}:\n  api_key: sk-in-a-file\n")
    with pytest.raises(SettingsError) as exc:
        load_settings(config)
    message = str(exc.value)
    assert f"RAGENT_{section.upper()}_API_KEY" in message and "sk-in-a-file" not in message
    monkeypatch.setenv(f"RAGENT_{section.upper()}_API_KEY", "sk-from-env")
    config.write_text("")
    secret = getattr(load_settings(config), section).api_key
    assert secret is not None and secret.get_secret_value() == "sk-from-env"


def test_several_workers_need_a_shared_redis(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAGENT_SERVER_WORKERS", "2")
    with pytest.raises(SettingsError, match="redis_url"):
        load_settings()
    monkeypatch.setenv("RAGENT_SERVER_REDIS_URL", "redis://127.0.0.1:6379/0")
    assert load_settings().server.workers == 2
    monkeypatch.setenv("RAGENT_PROFILE", "production")  # a Redis is configured there
    monkeypatch.delenv("RAGENT_SERVER_WORKERS")
    monkeypatch.delenv("RAGENT_SERVER_REDIS_URL")
    assert load_settings().server.workers == 2


def test_dotenv_in_the_working_directory_overrides_the_profile(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text(
        "# other tools' lines are left alone\n"
        "OPENAI_API_KEY=not-ours\n"
        "RAGENT_TENANT_ID=from-dotenv\n"
        "RAGENT_LLM_BASE_URL=http://127.0.0.1:9/v1\n"
        "RAGENT_LLM_API_KEY=secret-from-dotenv\n"
        "RAGENT_PROFILE=production\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RAGENT_LLM_BASE_URL", "http://127.0.0.1:8/v1")  # the environment wins
    s = load_settings()
    assert s.profile == "production" and s.retrieval.vector_backend == "weaviate"
    assert s.tenant_id == "from-dotenv"
    assert s.llm.base_url == "http://127.0.0.1:8/v1"
    assert s.llm.api_key is not None
    assert s.llm.api_key.get_secret_value() == "secret-from-dotenv"


def test_without_dotenv_nothing_changes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    assert load_settings().tenant_id == "default"
