"""recall_scenarios: the cases an agent memory is used for, each answered by recall top-1.

Four kinds of case share one memory (with every other case's items as distractors): a
near-duplicate API request (cache hit), a stated user preference, a similar support ticket and
a matching incident log line. Text goes through the built-in hashed n-gram encoder; the
baseline is raw cosine nearest neighbour on the same vectors.
"""

from __future__ import annotations

from typing import List

import numpy as np

from ..encoders import HashedNgramEncoder
from ..memory import RecallMemory

NAME = "recall_scenarios"
METRIC = "top-1 hit rate over the scenario queries"

# (kind, stored items, [(query, index of the right item)]).
CASES = [
    ("api request", [
        "GET /api/v2/users/4821/orders?limit=50&status=shipped",
        "POST /api/v2/payments {amount: 120.00, currency: EUR, method: card}",
        "GET /api/v2/products/search?q=wireless+headphones&sort=price",
        "DELETE /api/v2/sessions/9f3a2c",
        "GET /api/v1/weather/forecast?city=Berlin&days=5",
        "PUT /api/v2/users/4821/address {street: Hauptstrasse 5, city: Bonn}",
    ], [
        ("GET /api/v2/users/4821/orders?limit=100&status=shipped", 0),
        ("GET /api/v1/weather/forecast?city=Berlin&days=7", 4),
        ("POST /api/v2/payments {amount: 125.50, currency: EUR, method: card}", 1),
    ]),
    ("user preference", [
        "The user prefers dark mode in the code editor.",
        "The user's favourite programming language is Rust.",
        "The user wants replies in short bullet points, not long paragraphs.",
        "The user is vegetarian and avoids fish.",
        "The user lives in Lisbon and works remote on Fridays.",
        "The user wants meetings scheduled after 10 am only.",
    ], [
        ("should the code editor use dark mode or light mode for this user?", 0),
        ("which programming language does the user like most", 1),
        ("what time can meetings with the user be scheduled", 5),
    ]),
    ("support ticket", [
        "Cannot log in after password reset: the reset email link says token expired.",
        "Invoice PDF download fails with error 500 on the billing page.",
        "Mobile app crashes on startup after the latest iOS update.",
        "Two-factor authentication codes are not accepted, clock seems off.",
        "Export to CSV produces garbled characters for accented names.",
        "Dashboard charts load very slowly for accounts with many projects.",
    ], [
        ("password reset link expired, still cannot log in", 0),
        ("app crashes at startup since iOS update", 2),
        ("CSV export shows broken characters for names with accents", 4),
    ]),
    ("incident log", [
        "2024-03-02T10:14:07Z ERROR db-pool: connection timeout after 30000ms host=pg-primary-2",
        "2024-03-02T10:15:44Z WARN  disk usage 91% on /var/lib/kafka broker=kafka-3",
        "2024-03-02T10:16:02Z ERROR auth-svc: JWT signature verification failed kid=rot-7",
        "2024-03-02T10:17:30Z CRIT  oom-killer killed process worker-14 rss=7.9GiB",
        "2024-03-02T10:18:11Z ERROR payment-gw: upstream 502 Bad Gateway provider=stripe",
        "2024-03-02T10:19:59Z WARN  cert for api.example.com expires in 6 days",
    ], [
        ("2024-05-19T22:01:13Z ERROR db-pool: connection timeout after 30000ms host=pg-primary-1", 0),
        ("2024-05-19T22:03:40Z CRIT  oom-killer killed process worker-2 rss=8.1GiB", 3),
        ("2024-05-19T22:04:05Z ERROR payment-gw: upstream 502 Bad Gateway provider=adyen", 4),
    ]),
]


def run(seed: int, quick: bool, bar) -> dict:
    """Run the agent-memory scenarios; returns the suite's result dict."""
    enc = HashedNgramEncoder(dim=256)
    texts: List[str] = []
    queries: List[str] = []
    answer_rows: List[int] = []
    kinds: List[str] = []
    for kind, items, qs in CASES:
        base = len(texts)
        texts += items
        for q, i in qs:
            queries.append(q)
            answer_rows.append(base + i)
            kinds.append(kind)
    bar.add_total(len(texts) + len(queries))
    X = enc.encode(texts)
    Q = enc.encode(queries)
    mem = RecallMemory(256, code_dim=128, seed=seed)
    ids = mem.observe(X, now=0.0)
    bar.update(len(texts))
    got, scores = mem.recall(Q, k=3, now=0.0)
    bar.update(len(queries))
    answers = np.asarray(answer_rows)
    hit = got[:, 0] == ids[answers]
    raw = np.argmax(Q @ X.T, axis=1) == answers
    per_kind = {k: float(np.mean(hit[np.asarray(kinds) == k])) for k, _, _ in CASES}
    margin = scores[:, 0] - scores[:, 1]
    return {
        "lpn": float(hit.mean()),
        "baseline": float(raw.mean()),
        "criterion": "every scenario query ranks its right item first (top-1 hit rate = 1)",
        "passed": bool(hit.all()),
        "details": {
            "items": len(texts),
            "queries": len(queries),
            "per_kind": per_kind,
            "baseline": "raw cosine nearest neighbour on the same hashed n-gram vectors",
            "misses": [queries[i] for i in np.flatnonzero(~hit)],
        },
        "curves": {"query": list(range(len(queries))), "hit": hit.astype(int).tolist(),
                   "baseline_hit": raw.astype(int).tolist(),
                   "margin": [float(m) for m in margin]},
    }
