"""Schemathesis hooks for tests/sidecar_schema.rs (loaded through SCHEMATHESIS_HOOKS).

The sidecar's description gives its domains the format `mapped-domain`: a
name the MappedDomain CRD accepts, in any spelling that normalises to one
(any case, one trailing dot, surrounding space, Unicode labels). JSON Schema
cannot say that, so this strategy generates such names: mostly from a small
vocabulary, so that writes, reads and deletes of one domain meet, and the
sites' sets overlap.

Its checkInterval has the format `check-interval`: a duration between 10s
and 24h, which no pattern can say either (a pattern alone would make `0s`
schema-valid, and the sidecar refuses it). This strategy generates such
durations, again mostly from a few, so that a value meets one already
written.
"""

import json
import os
import urllib.parse
import urllib.request

import schemathesis
from hypothesis import strategies as st

WORDS = ["shop", "blog", "www", "a", "b-c", "x1", "example", "test"]
TLDS = ["com", "org", "example", "de", "jp", "io"]
UNICODE = ["bücher", "münchen", "日本", "ｅｘａｍｐｌｅ", "ÖL", "café"]

label = st.one_of(
    st.sampled_from(WORDS),
    st.sampled_from(UNICODE),
    st.from_regex(r"[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True),
)


@st.composite
def mapped_domain(draw):
    labels = draw(st.lists(label, min_size=1, max_size=3))
    name = ".".join(labels + [draw(st.sampled_from(TLDS))])
    if draw(st.booleans()):
        name = "*." + name
    if draw(st.booleans()):
        name = "".join(c.upper() if draw(st.booleans()) else c for c in name)
    return name + draw(st.sampled_from(["", "", "", "."]))


schemathesis.openapi.format("mapped-domain", mapped_domain())

INTERVALS = ["10s", "60s", "5m", "300s", "1h30m", "24h"]
check_interval = st.one_of(
    st.sampled_from(INTERVALS),
    st.integers(10, 86400).map(lambda n: f"{n}s"),
    st.integers(1, 1440).map(lambda n: f"{n}m"),
    st.integers(1, 23).flatmap(lambda h: st.integers(0, 59).map(lambda m: f"{h}h{m}m")),
    st.integers(10_000, 86_400_000).map(lambda n: f"{n}ms"),
    st.sampled_from(["1.5h", "0.5m", "12.25s"]),
)

schemathesis.openapi.format("check-interval", check_interval)


# The recorder of tests/sidecar_schema.rs: it snapshots the namespace's
# MappedDomains before and after every call, and says whether the answer
# accounts for what changed. Only while the test runs schemathesis.
RECORDER = os.environ.get("SIDECAR_SCHEMA_RECORDER")
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
_verdicts = {}


def _post(path, payload):
    request = urllib.request.Request(
        RECORDER + path,
        data=json.dumps(payload).encode(),
        headers={"content-type": "application/json"},
        method="POST",
    )
    with _opener.open(request, timeout=30) as answer:
        return json.load(answer)


if RECORDER:

    @schemathesis.hook
    def before_call(context, case, kwargs):
        _post("/before", {})

    @schemathesis.hook
    def after_call(context, case, response):
        body = case.body if isinstance(case.body, dict) else None
        verdict = _post(
            "/after",
            {
                "method": response.request.method,
                "template": case.operation.path,
                # as sent: parameters percent-encoded
                "path": urllib.parse.urlsplit(response.request.url).path,
                "status": response.status_code,
                "domains": body.get("domains") if body else None,
                "checkInterval": body.get("checkInterval") if body else None,
            },
        )
        _verdicts[id(response)] = verdict

    @schemathesis.check
    def writes_only_what_the_answer_says(ctx, response, case):
        """A refusal (4xx, 5xx) or a read changes no MappedDomain; a write changes only its own."""
        verdict = _verdicts.get(id(response))
        if verdict and verdict.get("problem"):
            raise AssertionError(verdict["problem"])
