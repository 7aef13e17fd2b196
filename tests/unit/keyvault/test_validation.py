"""Request validation names the field and never quotes a key; hints reveal little."""

import pytest
from pydantic import SecretStr

from tzurot.keyvault.domain import key_hint
from tzurot.keyvault.validation import (
    check_api_key,
    check_batch_size,
    check_provider,
    check_user_id,
)
from tzurot.runtime.errors import InvalidArgument


@pytest.mark.parametrize("provider", ["openrouter", "openai", "x", "a.b-c_d", "9" * 64])
def test_good_providers(provider: str) -> None:
    assert check_provider(provider) == provider


@pytest.mark.parametrize("provider", ["", "OpenAI", "-x", ".x", "a b", "a/b", "é", "9" * 65])
def test_bad_providers_name_the_field(provider: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        check_provider(provider)
    assert caught.value.field == "provider"


@pytest.mark.parametrize(
    "user_id",
    [
        "",
        " ",
        "user-1",
        "123456789012345678",  # a Discord id is not gateway's user id
        "9f1c3a3e-8a57-4c1e-9d0b-1f7f6c1a2b3c\n",
        "9f1c3a3e8a574c1e9d0b1f7f6c1a2b3c",
        "sk-or-v1-0123456789abcdef0123456789",
    ],
)
def test_bad_user_ids_name_the_field(user_id: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        check_user_id(user_id)
    assert caught.value.field == "user_id"


def test_uuid_user_id_is_fine() -> None:
    assert check_user_id("9f1c3a3e-8a57-4c1e-9d0b-1f7f6c1a2b3c")


@pytest.mark.parametrize(
    "api_key",
    ["", "x" * 4097, "sk-has space", "sk-tab\there", "sk-nl\n", "sk-\x07bell", "sk-\u2028"],
)
def test_bad_keys_name_the_field_without_quoting(api_key: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        check_api_key(SecretStr(api_key))
    assert caught.value.field == "api_key"
    if api_key:
        assert api_key.strip() not in caught.value.message


def test_longest_key_is_accepted() -> None:
    assert check_api_key(SecretStr("k" * 4096))


def test_batch_size() -> None:
    assert check_batch_size(0, 100) == 100
    assert check_batch_size(7, 100) == 7
    for bad in (-1, 10_001):
        with pytest.raises(InvalidArgument, match="batch_size"):
            check_batch_size(bad, 100)


@pytest.mark.parametrize(
    ("key", "hint"),
    [
        ("", ""),
        ("abc", ""),
        ("abcd", "d"),
        ("abcdefgh", "gh"),
        ("sk-or-v1-0123456789abcdef", "cdef"),
    ],
)
def test_hint_is_at_most_four_chars_and_a_quarter(key: str, hint: str) -> None:
    assert key_hint(key) == hint


def test_secret_str_hides_the_key() -> None:
    secret = SecretStr("sk-or-v1-planted")
    assert "planted" not in repr(secret)
    assert "planted" not in str(secret)
    assert "planted" not in f"{secret}"
