"""The SSE decoder alone: bytes in, frames out, no I/O (WHATWG event stream rules)."""

from __future__ import annotations

import pytest

from fabric_platform._sse import ServerSentEvent, SSEDecoder


def decode(*chunks: bytes) -> list[ServerSentEvent]:
    decoder = SSEDecoder()
    events: list[ServerSentEvent] = []
    for chunk in chunks:
        events.extend(decoder.feed(chunk))
    return events


def test_server_frame() -> None:
    events = decode(b'event: job.created\nid: e-1\ndata: {"id":"e-1"}\n\n')

    assert events == [ServerSentEvent("job.created", '{"id":"e-1"}', "e-1")]


def test_event_type_defaults_to_message() -> None:
    assert decode(b"data: x\n\n") == [ServerSentEvent("message", "x", None)]


def test_multi_line_data_is_joined_with_newlines() -> None:
    assert decode(b"data: one\ndata: two\ndata:\ndata: three\n\n")[0].data == "one\ntwo\n\nthree"


def test_only_one_space_after_the_colon_is_dropped() -> None:
    assert decode(b"data:  two spaces\n\ndata:none\n\n") == [
        ServerSentEvent("message", " two spaces"),
        ServerSentEvent("message", "none"),
    ]


def test_comments_are_ignored() -> None:
    assert decode(b": ping\n\n: another\ndata: x\n: inside\n\n") == [
        ServerSentEvent("message", "x")
    ]


def test_unknown_fields_are_ignored() -> None:
    assert decode(b"foo: bar\ndata: x\nbaz\n\n") == [ServerSentEvent("message", "x")]


def test_a_field_name_alone_means_an_empty_value() -> None:
    assert decode(b"data\n\n") == [ServerSentEvent("message", "")]


def test_frame_without_data_is_not_dispatched_but_its_id_counts() -> None:
    decoder = SSEDecoder()

    assert decoder.feed(b"event: ignored\nid: e-7\n\n") == []
    assert decoder.last_event_id == "e-7"
    assert decoder.feed(b"data: next\n\n") == [ServerSentEvent("message", "next", "e-7")]


def test_id_persists_until_changed_and_can_be_reset() -> None:
    events = decode(b"id: 1\ndata: a\n\ndata: b\n\nid\ndata: c\n\n")

    assert [e.id for e in events] == ["1", "1", None]


def test_id_with_nul_is_ignored() -> None:
    assert decode(b"id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n")[1].id == "1"


def test_id_is_committed_only_when_the_frame_ends() -> None:
    decoder = SSEDecoder(last_event_id="old")

    decoder.feed(b"id: new\ndata: half")

    assert decoder.last_event_id == "old"


def test_retry_field() -> None:
    decoder = SSEDecoder()

    decoder.feed(b"retry: 2500\n\n")
    assert decoder.retry == 2500
    decoder.feed(b"retry: soon\n\nretry: 1.5\n\n")
    assert decoder.retry == 2500


@pytest.mark.parametrize("newline", [b"\r\n", b"\r", b"\n"])
def test_every_line_break_style(newline: bytes) -> None:
    raw = newline.join([b"event: k", b"id: 1", b"data: a", b"data: b", b"", b""])

    assert decode(raw) == [ServerSentEvent("k", "a\nb", "1")]


def test_crlf_split_between_chunks_is_one_line_break() -> None:
    events = decode(b"data: a\r", b"\n\r", b"\ndata: b\r\n\r\n")

    assert events == [ServerSentEvent("message", "a"), ServerSentEvent("message", "b")]


def test_cr_alone_at_a_chunk_end_still_ends_the_line() -> None:
    decoder = SSEDecoder()

    assert decoder.feed(b"data: a\r\r") == [ServerSentEvent("message", "a")]
    assert decoder.feed(b"data: b\r\r") == [ServerSentEvent("message", "b")]


def test_frames_cut_at_every_byte() -> None:
    raw = 'event: job.completed\r\nid: e-9\r\n: ping\r\ndata: {"x": "é€"}\r\n\r\n'.encode()

    events = decode(*(raw[i : i + 1] for i in range(len(raw))))

    assert events == [ServerSentEvent("job.completed", '{"x": "é€"}', "e-9")]


def test_many_frames_in_one_chunk() -> None:
    raw = b"".join(f"id: {i}\ndata: {i}\n\n".encode() for i in range(50))

    assert [e.data for e in decode(raw)] == [str(i) for i in range(50)]


def test_incomplete_frame_at_the_end_is_not_dispatched() -> None:
    assert decode(b"data: a\n\ndata: b\n") == [ServerSentEvent("message", "a")]


def test_leading_byte_order_mark_is_skipped() -> None:
    assert decode(b"\xef\xbb", b"\xbfdata: x\n\n") == [ServerSentEvent("message", "x")]


def test_invalid_utf8_is_replaced_not_fatal() -> None:
    assert decode(b"data: \xff\n\n") == [ServerSentEvent("message", "\ufffd")]


def test_unicode_line_separators_are_not_line_breaks() -> None:
    # JSON may carry U+2028 unescaped; only CR and LF end an SSE line.
    assert decode("data: a\u2028b\x0cc\n\n".encode()) == [
        ServerSentEvent("message", "a\u2028b\x0cc")
    ]


def test_decode_line_is_the_line_fed_state_machine() -> None:
    decoder = SSEDecoder()

    assert decoder.decode_line("event: e") is None
    assert decoder.decode_line("data: d") is None
    assert decoder.decode_line("") == ServerSentEvent("e", "d")
    assert decoder.decode_line("") is None
