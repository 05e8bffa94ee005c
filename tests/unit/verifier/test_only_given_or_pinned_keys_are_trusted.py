"""Key files and the trust store (ELS sections 5, 7, 9): only keys the auditor gives or pins are trusted."""

from __future__ import annotations

import json

import pytest
from agentops_verify._ecdsa import PublicKey, load_pem_public_key
from agentops_verify._keys import KeyFormatError, TrustStore, is_key_id, parse_key_entry, parse_key_file

from tests.support.keys import TestSigner, keys_json, make_signer


@pytest.fixture(scope="module")
def signers() -> tuple[TestSigner, TestSigner, TestSigner]:
    return make_signer(), make_signer(), make_signer()


def public_key(signer: TestSigner) -> PublicKey:
    return load_pem_public_key(signer.public_key_pem)


# --- Key files ------------------------------------------------------------------------------------------------


def test_pem_key_file_gives_its_key(signers: tuple[TestSigner, ...]) -> None:
    (key,) = parse_key_file(signers[0].public_key_pem.encode())
    assert key.key_id == signers[0].key_id


def test_pem_key_file_with_several_blocks_gives_every_key(signers: tuple[TestSigner, ...]) -> None:
    data = (signers[0].public_key_pem + "\n" + signers[1].public_key_pem).encode()
    assert [key.key_id for key in parse_key_file(data)] == [signers[0].key_id, signers[1].key_id]


def test_v1_keys_document_gives_every_listed_key(signers: tuple[TestSigner, ...]) -> None:
    keys = parse_key_file(b"\n  " + keys_json(*signers))
    assert [key.key_id for key in keys] == [signer.key_id for signer in signers]


def test_key_entry_claiming_another_keys_id_is_rejected(signers: tuple[TestSigner, ...]) -> None:
    # A key file that files the attacker's PEM under the real key's id must not make the attacker's key "the" key.
    entry = signers[1].key_entry() | {"signer_key_id": signers[0].key_id}
    document = json.dumps({"keys": [signers[0].key_entry(), entry]}).encode()
    with pytest.raises(KeyFormatError, match="says signer_key_id"):
        parse_key_file(document)


def test_key_entry_with_uppercase_id_is_rejected(signers: tuple[TestSigner, ...]) -> None:
    # Ids are compared as strings (ELS section 5), so a differently cased id is a different id.
    entry = signers[0].key_entry() | {"signer_key_id": signers[0].key_id.upper().replace("SHA256", "sha256")}
    with pytest.raises(KeyFormatError, match="says signer_key_id"):
        parse_key_entry(entry)


def test_key_entry_with_another_algorithm_is_rejected(signers: tuple[TestSigner, ...]) -> None:
    entry = signers[0].key_entry() | {"algorithm": "ECDSA_P384_SHA384"}
    with pytest.raises(KeyFormatError, match="is not ECDSA_P256_SHA256"):
        parse_key_entry(entry)


@pytest.mark.parametrize("missing", ["signer_key_id", "public_key_pem", "algorithm"])
def test_key_entry_missing_a_member_is_rejected(signers: tuple[TestSigner, ...], missing: str) -> None:
    entry = signers[0].key_entry()
    del entry[missing]
    with pytest.raises(KeyFormatError):
        parse_key_entry(entry)


def test_key_entry_that_is_not_an_object_is_rejected() -> None:
    with pytest.raises(KeyFormatError, match="not a JSON object"):
        parse_key_file(b'{"keys": ["sha256:00"]}')


def test_key_entry_with_an_unreadable_pem_is_rejected(signers: tuple[TestSigner, ...]) -> None:
    entry = signers[0].key_entry() | {"public_key_pem": "not a key"}
    with pytest.raises(KeyFormatError, match="no PEM PUBLIC KEY block"):
        parse_key_entry(entry)


def test_export_style_public_keys_entry_parses(signers: tuple[TestSigner, ...]) -> None:
    entry = {
        "signer_key_id": signers[2].key_id,
        "algorithm": "ECDSA_P256_SHA256",
        "public_key_pem": signers[2].public_key_pem,
    }
    assert parse_key_entry(entry).key_id == signers[2].key_id


@pytest.mark.parametrize(
    "document",
    [b'{"keys": []}', b'{"key": []}', b'{"keys": {}}', b"{}"],
    ids=["empty_list", "misnamed_member", "keys_not_a_list", "empty_object"],
)
def test_key_document_without_a_keys_list_is_rejected(document: bytes) -> None:
    with pytest.raises(KeyFormatError, match="keys"):
        parse_key_file(document)


@pytest.mark.parametrize(
    "document",
    [b'{"keys": [], "keys": []}', b'{"keys": [NaN]}', b'{"keys": [', b'{"keys": []} trailing'],
    ids=["duplicate_member", "nan", "truncated", "trailing_text"],
)
def test_key_document_that_is_not_strict_json_is_rejected(document: bytes) -> None:
    with pytest.raises(KeyFormatError, match="not valid JSON"):
        parse_key_file(document)


def test_key_file_that_is_neither_pem_nor_json_is_rejected() -> None:
    with pytest.raises(KeyFormatError):
        parse_key_file(b"\x00\x01binary")


# --- Key ids --------------------------------------------------------------------------------------------------


def test_key_id_form(signers: tuple[TestSigner, ...]) -> None:
    assert is_key_id(signers[0].key_id)
    assert not is_key_id(signers[0].key_id.upper())
    assert not is_key_id(signers[0].key_id[len("sha256:") :])
    assert not is_key_id(signers[0].key_id + "0")
    assert not is_key_id(signers[0].key_id + "\n")


# --- Trust store ----------------------------------------------------------------------------------------------


def test_added_key_is_trusted_and_others_are_not(signers: tuple[TestSigner, ...]) -> None:
    store = TrustStore()
    store.add(public_key(signers[0]))
    assert store.trusts(signers[0].key_id)
    assert store.get(signers[0].key_id) == public_key(signers[0])
    assert not store.trusts(signers[1].key_id)
    assert store.get(signers[1].key_id) is None


def test_document_key_without_a_pin_is_not_trusted(signers: tuple[TestSigner, ...]) -> None:
    # ELS section 5: a key shipped inside the evidence is never a trust anchor by itself.
    store = TrustStore([public_key(signers[0])])
    checked = store.with_document_keys([public_key(signers[1])])
    assert not checked.trusts(signers[1].key_id)
    assert checked.get(signers[1].key_id) is None
    assert checked.trusts(signers[0].key_id)


def test_pinned_document_key_is_trusted_for_that_document_only(signers: tuple[TestSigner, ...]) -> None:
    store = TrustStore(pinned_ids=[signers[1].key_id])
    checked = store.with_document_keys([public_key(signers[1]), public_key(signers[2])])
    assert checked.trusts(signers[1].key_id)
    assert checked.get(signers[1].key_id) == public_key(signers[1])
    assert not checked.trusts(signers[2].key_id)
    # The auditor's store did not absorb the document's key: the next document starts from the pins again.
    assert not store.trusts(signers[1].key_id)
    assert not store.with_document_keys([]).trusts(signers[1].key_id)


def test_pin_alone_supplies_no_key(signers: tuple[TestSigner, ...]) -> None:
    store = TrustStore()
    store.pin(signers[0].key_id)
    assert store.pinned_ids == frozenset({signers[0].key_id})
    assert not store.trusts(signers[0].key_id)
    assert store.get(signers[0].key_id) is None


def test_document_key_under_a_pinned_id_with_another_pem_is_not_trusted(signers: tuple[TestSigner, ...]) -> None:
    # The document may label the attacker's PEM with the pinned id; the id is recomputed from the key itself.
    store = TrustStore(pinned_ids=[signers[0].key_id])
    forged_entry = signers[1].key_entry() | {"signer_key_id": signers[0].key_id}
    with pytest.raises(KeyFormatError):
        parse_key_entry(forged_entry)
    checked = store.with_document_keys([public_key(signers[1])])
    assert not checked.trusts(signers[0].key_id)
    assert not checked.trusts(signers[1].key_id)


@pytest.mark.parametrize(
    "bad_id",
    ["", "sha256:", "sha256:" + "0" * 63, "sha256:" + "A" * 64, "SHA256:" + "0" * 64, "0" * 64, "sha256:" + "g" * 64],
    ids=["empty", "prefix_only", "short", "uppercase_hex", "uppercase_prefix", "no_prefix", "not_hex"],
)
def test_malformed_pin_is_rejected_and_pins_nothing(bad_id: str) -> None:
    store = TrustStore()
    with pytest.raises(KeyFormatError, match="lowercase hex"):
        store.pin(bad_id)
    assert store.pinned_ids == frozenset()


def test_store_built_from_a_key_file_trusts_every_key_in_it(signers: tuple[TestSigner, ...]) -> None:
    store = TrustStore(parse_key_file(keys_json(signers[0], signers[1])))
    assert store.trusts(signers[0].key_id)
    assert store.trusts(signers[1].key_id)
    assert not store.trusts(signers[2].key_id)
