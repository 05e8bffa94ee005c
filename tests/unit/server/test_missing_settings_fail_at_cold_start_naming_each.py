"""Settings and wiring at cold start: a function missing a variable it needs fails at once, naming every one missing."""

from __future__ import annotations

import pytest
from agentops_server.aws.wiring import REQUIRED_SETTINGS, wiring_for
from agentops_server.config import ConfigurationError, Settings


def test_missing_variables_are_all_named_in_one_error() -> None:
    with pytest.raises(ConfigurationError) as missing:
        Settings.from_env({}, required=("ARCHIVE_BUCKET", "SEAL_KEY_ID"))
    assert str(missing.value) == "missing environment variable(s): TABLE_NAME, ARCHIVE_BUCKET, SEAL_KEY_ID"


def test_an_empty_required_variable_counts_as_missing_never_as_an_empty_bucket_name() -> None:
    with pytest.raises(ConfigurationError, match="ARCHIVE_BUCKET"):
        Settings.from_env({"TABLE_NAME": "chain", "ARCHIVE_BUCKET": ""}, required=("ARCHIVE_BUCKET",))


def test_a_bucket_that_was_not_required_is_refused_when_used() -> None:
    settings = Settings.from_env({"TABLE_NAME": "chain"})
    with pytest.raises(ConfigurationError, match="ARCHIVE_BUCKET"):
        _ = settings.bucket


@pytest.mark.parametrize("function", sorted(REQUIRED_SETTINGS))
def test_every_function_needs_the_bucket_and_the_sealer_its_key(function: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TABLE_NAME", "ARCHIVE_BUCKET", "SEAL_KEY_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TABLE_NAME", "chain")
    with pytest.raises(ConfigurationError) as missing:
        wiring_for(function, client=lambda *_args, **_options: pytest.fail("no client before the settings check"))
    expected = "ARCHIVE_BUCKET, SEAL_KEY_ID" if function == "seal" else "ARCHIVE_BUCKET"
    assert str(missing.value) == f"missing environment variable(s): {expected}"


def test_the_wiring_builds_one_client_per_service_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TABLE_NAME", "chain")
    monkeypatch.setenv("ARCHIVE_BUCKET", "archive")
    built: list[str] = []

    def client(service: str, **_options: object) -> object:
        built.append(service)
        return object()

    wiring = wiring_for("export", client=client)
    assert wiring.store is wiring.store
    assert wiring.archive is wiring.archive
    assert wiring.export_store is wiring.export_store
    assert wiring.log_reader is wiring.log_reader
    assert sorted(built) == ["dynamodb", "s3"]
