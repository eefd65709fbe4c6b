"""Reading replies on their own: the envelope, strict JSON, FastAPI details, picking fields."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import nemo_sync
from nemo_sync._envelope import detail_text, loads_strict, parse_reply, pick
from nemo_sync._models import Credits

EP = "GET /x"


def parse(body: bytes, status: int = 200) -> Any:
    return parse_reply(status=status, headers={}, body=body, endpoint=EP)


@pytest.mark.parametrize(
    ("body", "data"),
    [
        (b'{"code": 0, "message": "ok", "data": {"a": 1}}', {"a": 1}),
        (b'{"code": "0", "data": [1]}', [1]),
        (b'{"status": "pending", "id": "r1"}', {"status": "pending", "id": "r1"}),  # bare
        (b'{"data": null}', None),
    ],
)
def test_enveloped_and_bare_replies(body: bytes, data: Any) -> None:
    assert parse(body) == data


@pytest.mark.parametrize(
    "body",
    [
        b'{"code": 0, "data": {"v": NaN}}',
        b'{"code": 0, "data": {"v": Infinity}}',
        b'{"code": 0, "data": {"v": -Infinity}}',
        b'{"code": 0, "data": {"v": 1e309}}',
        b"[" * 200 + b"]" * 200,
        b"[" * 100_000 + b"]" * 100_000,
        b'{"code": 0, "data": "\xff\xfe"}',
    ],
)
def test_not_strict_json_is_a_typed_error(body: bytes) -> None:
    with pytest.raises(nemo_sync.APIResponseError) as caught:
        parse(body)
    assert caught.value.endpoint == EP


def test_depth_within_the_cap_is_fine() -> None:
    assert loads_strict("[" * 100 + "]" * 100) is not None


def test_a_code_in_a_200_is_an_error() -> None:
    with pytest.raises(nemo_sync.SessionNotFoundError):
        parse(b'{"code": 1002, "message": "gone", "data": null}')


@pytest.mark.parametrize(
    ("detail", "text"),
    [
        ("Not Found", "Not Found"),
        ([{"loc": ["body", "files"], "msg": "Field required"}], "body.files: Field required"),
        ([{"msg": "x"}, "plain"], "x; plain"),
        ({"loc": ["q"], "msg": "bad"}, "q: bad"),
        ("a\n\n  b", "a b"),
    ],
)
def test_detail_text(detail: Any, text: str) -> None:
    assert detail_text(detail) == text


def test_detail_text_is_capped() -> None:
    assert len(detail_text("x" * 10_000)) <= 503


def test_a_fastapi_error_body_becomes_the_message() -> None:
    with pytest.raises(nemo_sync.APIError, match=r"body\.id: Field required") as caught:
        parse(b'{"detail": [{"loc": ["body", "id"], "msg": "Field required"}]}', status=422)
    assert caught.value.status == 422


def test_pick_names_the_field_and_the_type() -> None:
    with pytest.raises(nemo_sync.APIResponseError, match=r"'data\.n' should be int or float"):
        pick({"n": "1"}, "n", endpoint=EP, kind=(int, float))
    with pytest.raises(nemo_sync.APIResponseError, match=r"no data\.a / data\.b"):
        pick({}, "a", "b", endpoint=EP)
    assert pick({"b": "x"}, "a", "b", endpoint=EP) == "x"


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32"])
def test_json_in_any_encoding_json_loads_reads(encoding: str) -> None:
    # The UTF-8 shortcut must not catch UTF-16/32 (with or without a BOM): "{" then a NUL.
    body = '{"code": 0, "data": {"name": "Zoë"}}'.encode(encoding)
    assert parse(body) == {"name": "Zoë"}


@pytest.mark.parametrize(
    ("body", "data"),
    [
        (b'{"code": false, "data": 1}', 1),  # not an int code: read as absent, as before
        (b'{"code": 0.0, "data": 2}', 2),
        (b'{"code": null, "data": 3}', 3),
        (b'{"code": "0", "data": 4}', 4),
    ],
)
def test_codes_off_the_fast_path_read_as_before(body: bytes, data: Any) -> None:
    assert parse(body) == data


@pytest.mark.parametrize("body", [b'{"code": 1001, "data": null}', b'{"code": "2001", "data": 1}'])
def test_a_nonzero_code_with_data_is_still_an_error(body: bytes) -> None:
    with pytest.raises(nemo_sync.APIError):
        parse(body)


def test_the_depth_cap_holds_at_its_boundary() -> None:
    # The walk is skipped for bodies too short to nest past the cap: check both sides of it.
    assert loads_strict("[" * 128 + "]" * 128) is not None
    with pytest.raises(ValueError, match="deep"):
        loads_strict("[" * 129 + "]" * 129)


_VALUES = st.one_of(
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.none(),
    st.text(max_size=3),
)


@given(st.dictionaries(st.sampled_from(["available", "frozen", "total", "x"]), _VALUES))
def test_credits_read_the_same_on_the_fast_path_and_the_general_one(data: dict[str, Any]) -> None:
    # A plain dict takes the shortcut; the same data behind a read-only mapping does not.
    def read(value: Any) -> Any:
        try:
            return Credits.from_data(value, EP)
        except nemo_sync.APIResponseError as exc:
            return type(exc), str(exc)

    assert read(data) == read(MappingProxyType(data))


# -- the success/data/error envelope [R] (contract v3) ---------------------------------------


@pytest.mark.parametrize(
    ("body", "data"),
    [
        # [R] render submit and poll: {"success": true, "data": {...}}
        (b'{"success": true, "data": {"id": "render_1", "status": "pending"}}',
         {"id": "render_1", "status": "pending"}),
        # success without data: the rest of the object is the reply, extra keys kept
        (b'{"success": true, "id": "r", "x": 1}', {"id": "r", "x": 1}),
        (b'{"success": "true", "data": [1]}', [1]),
    ],
)  # fmt: skip
def test_success_envelope_gives_its_data(body: bytes, data: Any) -> None:
    assert parse(body) == data


@pytest.mark.parametrize(
    ("body", "text"),
    [
        (b'{"success": false, "error": "Render id already exists"}', "Render id already exists"),
        (b'{"success": false, "error": {"message": "draft is empty"}}', "draft is empty"),
        (b'{"success": false, "data": {"a": 1}, "error": "nope"}', "nope"),
        (b'{"success": "false", "message": "said in message"}', "said in message"),
    ],
)
def test_success_false_in_a_200_is_a_typed_error_with_the_service_text(
    body: bytes, text: str
) -> None:
    # [R]: a failed render submission answers HTTP 200 with success: false.
    with pytest.raises(nemo_sync.RequestRefusedError) as caught:
        parse(body)
    assert text in str(caught.value)
    assert caught.value.endpoint == EP
    assert caught.value.status == 200


def test_success_false_without_any_text_still_says_what_happened() -> None:
    with pytest.raises(nemo_sync.RequestRefusedError, match="success: false"):
        parse(b'{"success": false}')


def test_success_false_with_a_documented_code_maps_to_that_error() -> None:
    body = b'{"success": false, "error": {"code": 1002, "message": "no such session"}}'
    with pytest.raises(nemo_sync.SessionNotFoundError):
        parse(body)


def test_success_false_on_an_http_error_keeps_the_status_mapping() -> None:
    with pytest.raises(nemo_sync.ServerError, match="render backend down"):
        parse(b'{"success": false, "error": "render backend down"}', status=503)
