"""``vlm-openai`` against a real HTTP server on loopback (threaded, chat-completions JSON)."""

from __future__ import annotations

import base64
import time
from pathlib import Path

import pytest
from judges_loopback import (
    CASES,
    ChatServer,
    Scripted,
    completion,
    fake_vlm,
    fake_vlm_reply,
    image_of,
    scene_image,
)
from unisandbox.errors import UserError
from unisandbox.judges.openai import OpenAIJudge
from unisandbox.judges.templates import builtin_templates
from unisandbox.judges.vlm import PROTOCOL_VERSION
from unisandbox.records import JudgeItem, Sample


def items_for(family: str, folder: Path) -> list[JudgeItem]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i, (scene, answer, expect) in enumerate(CASES[family]):
        path = folder / f"{family}-{i}.png"
        scene_image(scene).save(path)
        out.append(JudgeItem("t", family, Sample(id=str(i), prompt="p", answer=answer,
                                                 meta={"expect": expect}), path))
    return out


def judge_for(server: ChatServer, **kwargs) -> OpenAIJudge:
    kwargs.setdefault("backoff", 0.01)
    return OpenAIJudge(model="toy-vlm", base_url=server.url, **kwargs)


@pytest.mark.parametrize("family", ["math", "mapping", "knowledge"])
def test_two_stage_verdicts_match_what_the_vlm_sees(family, tmp_path):
    items = items_for(family, tmp_path)
    with ChatServer() as server:
        judge = judge_for(server)
        verdicts = judge.judge(items)
        judge.close()
    assert [v.verdict for v in verdicts] == [i.sample.meta["expect"] for i in items]
    for v in verdicts:
        assert v.raw.startswith("[stage 1]\n")
        if v.verdict == "yes":
            assert "[stage 2]" in v.raw and "Score: YES" in v.raw
    # short-circuits (Error / Reject) never reach stage 2
    short = sum(1 for v in verdicts if "without stage 2" in v.raw)
    assert short == sum(1 for s, _, _ in CASES[family] if s in (2, 6))
    assert len(server.posts) == 2 * len(items) - short
    # every call: temperature 0, the served model, stage 1 carries the image as a data URL
    for body in server.posts:
        assert body["temperature"] == 0 and body["model"] == "toy-vlm"
    firsts = [b for b in server.posts if not isinstance(b["messages"][0]["content"], str)]
    assert len(firsts) == len(items)
    url = firsts[0]["messages"][0]["content"][0]["image_url"]["url"]
    assert url.startswith("data:image/png;base64,")
    assert base64.b64decode(url.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    described = {v.description for v in verdicts}
    assert builtin_templates()[family].short_circuit[0] in described or family == "math" or short == 0


def test_stage_two_prompt_holds_description_and_expected_answer(tmp_path):
    items = items_for("math", tmp_path)[:1]
    with ChatServer() as server:
        judge_for(server).judge(items)
    second = server.posts[1]["messages"][0]["content"]
    assert isinstance(second, str)  # text only
    assert "Caption: 3 circles" in second and "Expected answer: 3 circles" in second


def test_http_500_is_retried_then_succeeds(tmp_path):
    items = items_for("math", tmp_path)[:1]

    def script(request, n):
        return Scripted({"error": "overloaded"}, status=500) if n < 2 else fake_vlm(request, n)

    with ChatServer(script) as server:
        verdicts = judge_for(server, retries=3).judge(items)
    assert verdicts[0].verdict == "yes"
    assert len(server.posts) == 4  # two 500s, then stage 1 and stage 2


def test_http_500_forever_is_error_after_retries(tmp_path):
    items = items_for("math", tmp_path)[:2]
    with ChatServer(lambda r, n: Scripted("upstream exploded", status=503)) as server:
        t0 = time.perf_counter()
        verdicts = judge_for(server, retries=2, backoff=0.05).judge(items)
        elapsed = time.perf_counter() - t0
    assert [v.verdict for v in verdicts] == ["error", "error"]
    assert len(server.posts) == 2 * 3  # 1 try + 2 retries per item, stage 1 only
    assert "HTTP 503" in verdicts[0].raw and "gave up after 3 attempts" in verdicts[0].raw
    assert "upstream exploded" in verdicts[0].raw  # the server's text is kept
    assert elapsed >= 0.05 + 0.10  # exponential backoff: 0.05, then 0.10


def test_slow_responses_time_out_are_retried_then_error(tmp_path):
    items = items_for("math", tmp_path)[:1]
    with ChatServer(lambda r, n: Scripted(completion("Caption: 3 circles"), delay=1.0)) as server:
        verdicts = judge_for(server, timeout=0.2, retries=1).judge(items)
    assert verdicts[0].verdict == "error"
    assert "timed out" in verdicts[0].raw and "gave up after 2 attempts" in verdicts[0].raw
    assert len(server.posts) == 2


def test_slow_then_fast_recovers(tmp_path):
    items = items_for("math", tmp_path)[:1]

    def script(request, n):
        reply = fake_vlm(request, n)
        return attrs_evolve_delay(reply, 1.0) if n == 0 else reply

    with ChatServer(script) as server:
        verdicts = judge_for(server, timeout=0.3, retries=2).judge(items)
    assert verdicts[0].verdict == "yes"


def attrs_evolve_delay(reply: Scripted, delay: float) -> Scripted:
    return Scripted(reply.body, reply.status, delay)


def test_malformed_json_is_error_with_raw_text(tmp_path):
    items = items_for("math", tmp_path)[:1]
    with ChatServer(lambda r, n: Scripted('{"choices": [ this is not json')) as server:
        verdicts = judge_for(server).judge(items)
    v = verdicts[0]
    assert v.verdict == "error"
    assert "malformed response" in v.raw and '{"choices": [ this is not json' in v.raw
    assert len(server.posts) == 1  # not retried: the same server would say the same


def test_json_without_choices_is_error(tmp_path):
    items = items_for("math", tmp_path)[:1]
    with ChatServer(lambda r, n: Scripted({"object": "error", "message": "bad"})) as server:
        v = judge_for(server).judge(items)[0]
    assert v.verdict == "error" and '"message": "bad"' in v.raw


def test_reply_without_score_line_is_error_with_raw_text(tmp_path):
    items = items_for("math", tmp_path)[:1]

    def script(request, n):
        if image_of(request) is not None:
            return fake_vlm(request, n)
        return Scripted(completion("They look the same to me, I think."))

    with ChatServer(script) as server:
        v = judge_for(server).judge(items)[0]
    assert v.verdict == "error"
    assert "They look the same to me, I think." in v.raw and "Caption: 3 circles" in v.raw
    assert v.description == "3 circles"


def test_first_score_match_counts(tmp_path):
    items = items_for("math", tmp_path)[:1]

    def script(request, n):
        if image_of(request) is not None:
            return fake_vlm(request, n)
        return Scripted(completion("**Score: NO**\nOn reflection... Score: YES"))

    with ChatServer(script) as server:
        assert judge_for(server).judge(items)[0].verdict == "no"


def test_client_errors_are_not_retried(tmp_path):
    items = items_for("math", tmp_path)[:1]
    with ChatServer(lambda r, n: Scripted({"error": "model not found"}, status=404)) as server:
        v = judge_for(server, retries=3).judge(items)[0]
    assert v.verdict == "error" and "HTTP 404 (not retried)" in v.raw and len(server.posts) == 1


def test_unreachable_server_is_error_not_no(tmp_path):
    items = items_for("math", tmp_path)[:1]
    with ChatServer() as server:
        url = server.url
    judge = OpenAIJudge(model="m", base_url=url, retries=1, backoff=0.01, timeout=2)
    v = judge.judge(items)[0]
    assert v.verdict == "error" and "connection failed" in v.raw
    with pytest.raises(UserError, match="cannot reach the judge server"):
        judge.ping()


def test_concurrency_bounds_requests_in_flight(tmp_path):
    items = items_for("math", tmp_path) * 5  # 30 items
    with ChatServer(latency=0.05) as server:
        judge = judge_for(server, concurrency=4)
        verdicts = judge.judge(items)
        judge.close()
    assert len(verdicts) == 30 and all(v.verdict in ("yes", "no") for v in verdicts)
    assert 2 <= server.max_in_flight <= 4
    with ChatServer(latency=0.05) as server:
        verdicts = judge_for(server).judge(items)  # default 32
    assert server.max_in_flight > 4


def test_identity_names_model_templates_and_protocol_not_url_or_key(monkeypatch, tmp_path):
    monkeypatch.setenv("JT_KEY", "sk-identity-secret")
    a = OpenAIJudge(model="qwen", base_url="http://127.0.0.1:1/v1", api_key_env="JT_KEY")
    b = OpenAIJudge(model="qwen", base_url="http://127.0.0.1:2/v1")
    ident = a.identity()
    assert ident == b.identity()
    assert ident["kind"] == "vlm-openai" and ident["model"] == "qwen"
    assert ident["protocol"] == PROTOCOL_VERSION
    assert set(ident["templates"]) == {"math", "mapping", "knowledge"}
    assert ident["templates"]["math"] == builtin_templates()["math"].identity()
    assert "sk-identity-secret" not in repr(ident) + repr(a)
    assert OpenAIJudge(model="other", base_url="http://127.0.0.1:1/v1").identity() != ident


def test_bad_arguments_are_clear(monkeypatch):
    monkeypatch.delenv("JT_MISSING", raising=False)
    with pytest.raises(ValueError, match="JT_MISSING"):
        OpenAIJudge(model="m", api_key_env="JT_MISSING")
    with pytest.raises(ValueError, match="base_url"):
        OpenAIJudge(model="m", base_url="localhost:8000")
    with pytest.raises(ValueError, match="model"):
        OpenAIJudge(model="")


def test_ping_lists_served_models():
    with ChatServer(model="Qwen2.5-VL-7B-Instruct") as server:
        assert judge_for(server).ping() == ["Qwen2.5-VL-7B-Instruct"]


def test_connections_are_kept_alive_with_nodelay(tmp_path):
    import socket

    items = items_for("math", tmp_path)
    with ChatServer() as server:
        judge = judge_for(server, concurrency=1)
        judge.judge(items)
        (conn,) = judge._connections  # one worker, one connection for all 2 x 6 calls
        # Nagle's algorithm + delayed ACK would add ~40 ms to each call (headers, then body)
        assert conn.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        judge.close()
    assert len(server.posts) == 2 * len(items) - 1


def test_stale_keep_alive_connection_is_replaced(tmp_path):
    items = items_for("math", tmp_path)[:1]
    with ChatServer(drop_connections=True) as server:
        judge = judge_for(server, concurrency=1, retries=0)
        # every request after the first finds its kept-alive connection closed by the server
        assert [v.verdict for v in judge.judge(items * 3)] == ["yes"] * 3  # no retries allowed
        judge.close()
    assert len(server.posts) == 6


def test_fake_vlm_answers_like_the_protocol_expects():
    # guards the test double itself: stage 1 by label, stage 2 with a Score line
    body = {"messages": [{"role": "user", "content": "Caption: 3 circles\nExpected answer: 3 circle"}]}
    assert fake_vlm_reply(body).endswith("Score: YES")


def test_number_arguments_are_checked_by_name():
    with pytest.raises(UserError, match=r"timeout must be a number >= 0\.001, got .abc."):
        OpenAIJudge(model="m", timeout="abc")
    with pytest.raises(UserError, match=r"retries must be a whole number >= 0, got 1\.5"):
        OpenAIJudge(model="m", retries=1.5)


def test_a_base_url_without_the_api_root_is_refused_at_the_ping():
    import http.server
    import threading

    class NotFound(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # a web server that is not the API: 404 everywhere
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotFound)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        judge = OpenAIJudge(model="m", base_url=f"http://127.0.0.1:{server.server_port}")
        with pytest.raises(UserError, match=r"has no /models \(HTTP 404\): is base_url the API root"):
            judge.ping()
        judge.close()
    finally:
        server.shutdown()


def test_a_key_echoed_in_a_good_reply_is_masked(tmp_path, monkeypatch):
    monkeypatch.setenv("JT_ECHO_KEY", "sk-echoed-secret")

    def echo(request, n):
        text = request["messages"][0]["content"]
        stage_one = isinstance(text, list)
        reply = "Caption: 3 circles, said Bearer sk-echoed-secret" if stage_one else "Score: YES"
        return Scripted(completion(reply))

    item = items_for("math", tmp_path)[0]
    with ChatServer(echo) as server:
        judge = judge_for(server, api_key_env="JT_ECHO_KEY")
        verdict = judge.judge([item])[0]
        judge.close()
    assert verdict.verdict == "yes" and "Bearer ***" in verdict.raw
    assert "sk-echoed-secret" not in verdict.raw + verdict.description


def test_a_key_with_a_windows_line_end_is_trimmed_and_control_characters_refused(monkeypatch):
    monkeypatch.setenv("JT_CRLF_KEY", "sk-crlf-secret\r\n")  # read from a .env file with CRLF
    with ChatServer() as server:
        judge = judge_for(server, api_key_env="JT_CRLF_KEY")
        judge.ping()
        judge.close()
        assert server.requests[0][1]["Authorization"] == "Bearer sk-crlf-secret"
    monkeypatch.setenv("JT_CRLF_KEY", "sk-smart\u201dquote")  # pasted from a document
    with pytest.raises(ValueError, match="past Latin-1"):
        OpenAIJudge(model="m", api_key_env="JT_CRLF_KEY")
    monkeypatch.setenv("JT_CRLF_KEY", "sk-two\rparts")
    with pytest.raises(ValueError, match="control characters") as caught:
        OpenAIJudge(model="m", api_key_env="JT_CRLF_KEY")
    assert "sk-two" not in str(caught.value)


def test_a_key_given_as_api_key_env_or_inside_base_url_is_refused_unechoed():
    with pytest.raises(ValueError, match="name an environment variable") as caught:
        OpenAIJudge(model="m", api_key_env="sk-LITERAL-key")
    assert "sk-LITERAL" not in str(caught.value)
    with pytest.raises(ValueError, match="credentials") as caught:
        OpenAIJudge(model="m", base_url="http://user:PASSWD123@127.0.0.1:1/v1")
    assert "PASSWD123" not in str(caught.value)


def test_a_key_echoed_across_the_raw_text_limit_is_masked(tmp_path, monkeypatch):
    """The raw reply is cut to a few thousand characters: masked before the cut, so a key the
    cut would split never reaches the run folder in part."""
    from unisandbox.judges.openai import _RAW_LIMIT

    monkeypatch.setenv("JT_CUT_KEY", "sk-SECRETKEY123456")
    body = "x" * (_RAW_LIMIT - 8) + "Bearer sk-SECRETKEY123456"
    item = items_for("math", tmp_path)[0]
    with ChatServer(lambda request, n: Scripted(body, status=500)) as server:
        verdict = judge_for(server, api_key_env="JT_CUT_KEY", retries=0).judge([item])[0]
    assert verdict.verdict == "error" and "sk-SECRET" not in verdict.raw
