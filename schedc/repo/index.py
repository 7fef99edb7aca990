"""`repo search`: an SQLite FTS5 index of the repository at HEAD, kept in the cache directory
(one database per repository path) and brought up to date when HEAD moves — by the diff
between the indexed commit and HEAD, so only the policies that changed are read again.

Ranking is FTS5's bm25 over name, description, tags, workloads (including the workloads and
metrics of performance records), tunables and notes, multiplied by a boost for the best
measured improvement over a baseline: a policy that made the workload 40% better outranks an
equally relevant one never measured. Broken entries are not indexed; they are listed as
skipped, and `fsck` says what is wrong with them.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from pydantic import TypeAdapter

from schedc.profile.similarity import ProfileShape, similarity
from schedc.repo import layout
from schedc.repo.entries import Entry, load_entries
from schedc.repo.gitstore import GitStore
from schedc.repo.searchdoc import (
    COLUMNS,
    WEIGHTS,
    behaviour_facets,
    behaviour_of,
    best_json,
    document,
    fts_query,
    kernel_facets,
)
from schedc.settings import EnvironmentProblem, Settings, cache_root

INDEX_FORMAT = 8  # 8: a profile's time as its record's JSON writes it (Z, not +00:00)
# A time as pydantic writes it in a record's JSON, so that a hit and `show` agree to the letter.
_TIME = TypeAdapter(datetime)
FACET_SAMPLE = 1000  # facet counts cover at most this many of the best matches
BOOST = 0.5  # score = bm25 relevance × (1 + BOOST × gain), gain clamped to [-0.5, 1]
# --profile: score × (1 + PROFILE_WEIGHT × s), s the best similarity of a policy's records'
# profiles to the one given (docs/profile.md, "Similarity")
PROFILE_WEIGHT = 4.0
_MARK_OPEN, _MARK_CLOSE = "\x02", "\x03"

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS state(key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS policy(
    id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL, kind TEXT, description TEXT,
    version INTEGER, verification TEXT, tags TEXT, gain REAL, best TEXT, behaviour TEXT);
CREATE TABLE IF NOT EXISTS facet_value(
    id INTEGER PRIMARY KEY, kind TEXT NOT NULL, value TEXT NOT NULL, UNIQUE(kind, value));
CREATE TABLE IF NOT EXISTS facet(policy INTEGER NOT NULL, counted INTEGER NOT NULL,
    value INTEGER NOT NULL, PRIMARY KEY(policy, counted, value)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS facet_by_value ON facet(value, counted, policy);
CREATE TABLE IF NOT EXISTS result(policy INTEGER NOT NULL, workload TEXT NOT NULL, gain REAL);
CREATE INDEX IF NOT EXISTS result_by_workload ON result(workload, policy);
CREATE TABLE IF NOT EXISTS broken(name TEXT PRIMARY KEY, problem TEXT);
CREATE TABLE IF NOT EXISTS profiled(policy INTEGER NOT NULL, record TEXT NOT NULL,
    workload TEXT NOT NULL, emulated INTEGER NOT NULL, created TEXT NOT NULL, shape TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS profiled_by_policy ON profiled(policy);
CREATE VIRTUAL TABLE IF NOT EXISTS doc USING fts5({", ".join(COLUMNS)},
    tokenize = 'porter unicode61');
"""


@dataclass
class Query:
    text: str = ""
    tags: list[str] = field(default_factory=list)
    workload: str | None = None
    kernel: str | None = None
    limit: int = 10
    behaviour_passing: bool = False  # only policies with a passing behaviour report
    # Rank by how alike the profiles of a policy's records are to this one; without text,
    # only policies with such records are listed.
    profile: ProfileShape | None = None


@dataclass
class Refresh:
    head: str | None
    mode: str  # none | incremental | full
    changed: int = 0


def fts5_problem() -> str | None:
    try:
        sqlite3.connect(":memory:").execute("CREATE VIRTUAL TABLE t USING fts5(x)")
    except sqlite3.OperationalError as exc:
        return f"this Python's sqlite3 (SQLite {sqlite3.sqlite_version}) has no FTS5: {exc}"
    return None


def index_path(settings: Settings, root: Path) -> Path:
    digest = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:16]
    return cache_root(settings) / "repo-index" / f"{digest}.sqlite3"


class SearchIndex:
    def __init__(self, store: GitStore, path: Path) -> None:
        problem = fts5_problem()
        if problem:
            raise EnvironmentProblem(
                problem, "use a Python whose sqlite3 module is built with FTS5 (most are)"
            )
        self.store = store
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.db = self._open(path)
        except sqlite3.DatabaseError:  # a damaged cache file: it is only a cache, start over
            for stale in (
                path,
                path.with_name(path.name + "-wal"),
                path.with_name(path.name + "-shm"),
            ):
                stale.unlink(missing_ok=True)
            self.db = self._open(path)

    def _open(self, path: Path) -> sqlite3.Connection:
        db = sqlite3.connect(path, timeout=60, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        for pragma in ("temp_store=MEMORY", "cache_size=-65536", "mmap_size=268435456"):
            db.execute(f"PRAGMA {pragma}")  # per-search temp table and the index in memory
        self.db = db
        if db.execute("PRAGMA user_version").fetchone()[0] != INDEX_FORMAT:
            self._reset()
        db.execute("SELECT count(*) FROM state").fetchone()
        return db

    def close(self) -> None:
        self.db.close()

    def _reset(self) -> None:
        for table in (
            "state",
            "policy",
            "facet",
            "facet_value",
            "result",
            "broken",
            "doc",
            "profiled",
        ):
            self.db.execute(f"DROP TABLE IF EXISTS {table}")
        self.db.executescript(_SCHEMA)
        self.db.execute(f"PRAGMA user_version={INDEX_FORMAT}")

    # -- keeping it current ------------------------------------------------------------------
    def refresh(self) -> Refresh:
        head = self.store.head()
        if self._indexed_head() == head:
            return Refresh(head, "none")
        self.db.execute("BEGIN IMMEDIATE")  # one refresher at a time; the others then see it done
        try:
            old = self._indexed_head()
            if old == head:
                self.db.execute("COMMIT")
                return Refresh(head, "none")
            if old is None or head is None or not self.store.has_commit(old):
                result = self._rebuild(head)
            else:
                result = self._update(old, head)
            self.db.execute(
                "INSERT OR REPLACE INTO state(key, value) VALUES ('head', ?)", (head or "",)
            )
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        if result.mode == "full":  # compact: one FTS segment, and no big WAL to read through
            # (no ANALYZE: with statistics the planner picks slower plans for these queries)
            self.db.execute("INSERT INTO doc(doc) VALUES ('optimize')")
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return result

    def _indexed_head(self) -> str | None:
        row = self.db.execute("SELECT value FROM state WHERE key = 'head'").fetchone()
        return (row[0] or None) if row else None

    def _rebuild(self, head: str | None) -> Refresh:
        for table in ("policy", "facet", "facet_value", "result", "broken", "doc", "profiled"):
            self.db.execute(f"DELETE FROM {table}")
        entries = load_entries(self.store, head) if head else []
        for entry in entries:
            self._insert(entry)
        return Refresh(head, "full", len(entries))

    def _update(self, old: str, head: str) -> Refresh:
        names = sorted(
            {n for p in self.store.changed_paths(old, head) if (n := layout.entry_of(p))}
        )
        for name in names:
            self._delete(name)
        for entry in load_entries(self.store, head, names):
            self._insert(entry)
        return Refresh(head, "incremental", len(names))

    def _delete(self, name: str) -> None:
        self.db.execute("DELETE FROM broken WHERE name = ?", (name,))
        row = self.db.execute("SELECT id FROM policy WHERE name = ?", (name,)).fetchone()
        if row is None:
            return
        for sql in (
            "DELETE FROM doc WHERE rowid = ?",
            "DELETE FROM facet WHERE policy = ?",
            "DELETE FROM result WHERE policy = ?",
            "DELETE FROM profiled WHERE policy = ?",
            "DELETE FROM policy WHERE id = ?",
        ):
            self.db.execute(sql, (row[0],))

    def _insert(self, entry: Entry) -> None:
        meta = entry.meta
        if meta is None:
            problem = "; ".join(f"{p}: {w}" for p, w in entry.problems) or "unreadable"
            self.db.execute("INSERT OR REPLACE INTO broken VALUES (?, ?)", (entry.name, problem))
            return
        best = entry.best()
        behaviour = behaviour_of(entry)
        cur = self.db.execute(
            "INSERT INTO policy(name, kind, description, version, verification, tags, gain, best, "
            "behaviour) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                meta.name,
                meta.kind,
                meta.description,
                meta.version,
                meta.verification.status if meta.verification else None,
                json.dumps(sorted(set(meta.tags))),
                best.improvement if best else None,
                json.dumps(best_json(best)) if best else None,
                json.dumps(behaviour),
            ),
        )
        pid = cur.lastrowid
        self.db.execute(
            f"INSERT INTO doc(rowid, {', '.join(COLUMNS)}) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (pid, *document(entry)),
        )
        facets = {("tag", t) for t in meta.tags}
        facets |= {("workload", w) for w in meta.workloads}
        facets |= {("workload", r.workload) for r in entry.records}
        kernels = {*meta.target_kernels, *(r.kernel for r in entry.records)}
        if meta.verification and meta.verification.kernel:
            kernels.add(meta.verification.kernel)
        if meta.verification:
            kernels |= {k.kernel for k in meta.verification.kernels}
        facets |= {("kernel", k) for k in kernel_facets(kernels)}
        facets |= behaviour_facets(behaviour)
        self.db.executemany(
            "INSERT OR IGNORE INTO facet_value(kind, value) VALUES (?, ?)", sorted(facets)
        )
        self.db.executemany(  # counted: tags and workloads get facet counts, the rest do not
            "INSERT OR IGNORE INTO facet SELECT ?, kind IN ('tag', 'workload'), id "
            "FROM facet_value WHERE kind = ? AND value = ?",
            [(pid, k, v) for k, v in sorted(facets)],
        )
        gains: dict[str, float] = {}
        for r in entry.records:
            if r.improvement is not None:
                gains[r.workload] = max(gains.get(r.workload, r.improvement), r.improvement)
        self.db.executemany(
            "INSERT INTO result VALUES (?, ?, ?)", [(pid, w, g) for w, g in gains.items()]
        )
        self.db.executemany(
            "INSERT INTO profiled VALUES (?, ?, ?, ?, ?, ?)",
            [
                (
                    pid,
                    r.id,
                    r.workload,
                    int(r.is_emulated),
                    _TIME.dump_python(r.profile.created, mode="json"),
                    r.profile.shape.model_dump_json(),
                )
                for r in entry.records
                if r.profile is not None
            ],
        )

    # -- searching ---------------------------------------------------------------------------
    def search(self, query: Query) -> dict[str, object]:
        refresh = self.refresh()
        match = fts_query(query.text)
        self._collect_hits(query, match)
        alike = self._profile_hits(query, match) if query.profile is not None else {}
        rows = self.db.execute(
            "SELECT p.id, p.name, p.kind, p.description, p.version, p.verification, p.tags, "
            "p.best, p.behaviour, h.rel, h.g, h.score FROM (SELECT * FROM temp.hits "
            "ORDER BY score DESC, name LIMIT ?) h JOIN policy p ON p.id = h.id "
            "ORDER BY h.score DESC, h.name",
            (query.limit,),
        ).fetchall()
        why = self._why(match, [r[0] for r in rows])
        results = [self._result(row, why.get(row[0], {}), query) for row in rows]
        if query.profile is not None:
            for row, result in zip(rows, results, strict=True):
                result["profile"] = alike.get(row[0])
                if row[0] in alike:
                    s = float(alike[row[0]]["similarity"])  # type: ignore[arg-type]
                    result["why"]["profile"] = round(1 + PROFILE_WEIGHT * s, 4)  # type: ignore[index]
        top = max((float(r["score"]) for r in results), default=0.0)  # type: ignore[arg-type]
        for rank, result in enumerate(results, 1):
            # bm25 scores mean nothing alone (a common word makes every one ~1e-06): the rank,
            # and the score as a share of the best one's, are what a reader compares.
            result["rank"] = rank
            share = float(result["score"]) / top if top > 0 else None  # type: ignore[arg-type]
            result["match"] = None if share is None else _sig(share)
        total, facets = self._facets()
        return {
            "ok": True,
            "query": query.text,
            "filters": {
                "tags": query.tags,
                "workload": query.workload,
                "kernel": query.kernel,
                "behaviour_passing": query.behaviour_passing,
                "profile": query.profile is not None,
            },
            "total": total,
            "results": results,
            "facets": facets,
            "facets_over": min(total, FACET_SAMPLE),
            "skipped": [
                {"name": n, "problem": p}
                for n, p in self.db.execute("SELECT name, problem FROM broken ORDER BY name")
            ],
            "index": {"head": refresh.head, "refresh": refresh.mode, "changed": refresh.changed},
        }

    def _collect_hits(self, query: Query, match: str | None) -> None:
        """Every matching policy with its bm25 relevance and the gain its boost uses, into a
        per-connection temp table that ranking and facet counting then share."""
        where, params = self._filters(query)
        gain, gain_params = "p.gain", []
        if query.workload:
            gain = "(SELECT max(gain) FROM result r WHERE r.policy = p.id AND r.workload = ?)"
            gain_params = [query.workload]
        if match:
            weights = ", ".join(str(w) for w in WEIGHTS)
            relevance = f"-bm25(doc, {weights})"
            source = "doc JOIN policy p ON p.id = doc.rowid"
            where, params = ["doc MATCH ?", *where], [match, *params]
        else:
            relevance, source = "1.0", "policy p"
        boost = f"(1 + {BOOST} * min(max(coalesce(g, 0), -0.5), 1.0))"
        self.db.execute("DROP TABLE IF EXISTS temp.hits")
        self.db.execute(
            f"CREATE TEMP TABLE hits AS SELECT id, name, rel, g, rel * {boost} AS score FROM ("
            f"SELECT p.id AS id, p.name AS name, {relevance} AS rel, {gain} AS g FROM {source}"
            + (f" WHERE {' AND '.join(where)}" if where else "")
            + ")",
            [*gain_params, *params],
        )

    def _profile_hits(self, query: Query, match: str | None) -> dict[int, dict[str, object]]:
        """Each hit's record measured under the profile most alike the query's (on
        --workload's workload, when given), its similarity s, and the hit's score times
        (1 + PROFILE_WEIGHT × s). Without text, hits with no such record are dropped."""
        assert query.profile is not None
        sql = (
            "SELECT pr.policy, pr.record, pr.workload, pr.emulated, pr.created, pr.shape "
            "FROM profiled pr JOIN temp.hits h ON h.id = pr.policy"
        )
        params: list[object] = []
        if query.workload:
            sql += " WHERE pr.workload = ?"
            params.append(query.workload)
        best: dict[int, dict[str, object]] = {}
        raw: dict[int, tuple[float, str]] = {}  # the best (similarity, record id) per policy
        for pid, record, workload, emulated, created, shape in self.db.execute(sql, params):
            s = similarity(query.profile, ProfileShape.model_validate_json(shape))
            if pid in raw and (s, str(record)) <= raw[pid]:
                continue  # ties: the later record (ids start with their time)
            raw[pid] = (s, str(record))
            best[pid] = {
                "similarity": round(s, 4),
                "record": record,
                "workload": workload,
                "emulated": bool(emulated),
                "profile_created": created,
            }
        self.db.execute("DROP TABLE IF EXISTS temp.alike")
        self.db.execute("CREATE TEMP TABLE alike(id INTEGER PRIMARY KEY, s REAL)")
        self.db.executemany(
            "INSERT INTO temp.alike VALUES (?, ?)",
            [(pid, s) for pid, (s, _record) in raw.items()],
        )
        if not match:
            self.db.execute("DELETE FROM temp.hits WHERE id NOT IN (SELECT id FROM temp.alike)")
        self.db.execute(
            f"UPDATE temp.hits SET score = score * (1 + {PROFILE_WEIGHT} * coalesce("
            "(SELECT s FROM temp.alike a WHERE a.id = temp.hits.id), 0))"
        )
        return best

    def _filters(self, query: Query) -> tuple[list[str], list[object]]:
        where: list[str] = []
        params: list[object] = []
        wanted = [("tag", t) for t in query.tags]
        if query.workload:
            wanted.append(("workload", query.workload))
        if query.kernel:
            wanted.append(("kernel", query.kernel))
        if query.behaviour_passing:
            on = f"@{query.kernel}" if query.kernel else ""
            wanted.append(("behaviour", f"passing{on}"))
        for kind, value in wanted:
            where.append(
                "p.id IN (SELECT f.policy FROM facet f WHERE f.counted = "
                f"{int(kind in ('tag', 'workload'))} AND f.value = "
                f"(SELECT id FROM facet_value WHERE kind = '{kind}' AND value = ?))"
            )
            params.append(value)
        return where, params

    def _facets(self) -> tuple[int, dict[str, object]]:
        """The number of matches, and tag and workload counts over the FACET_SAMPLE best of
        them (all of them, unless a query matches most of a large repository): each match's
        facets are one range of the facet table's primary key."""
        total = int(self.db.execute("SELECT count(*) FROM temp.hits").fetchone()[0])
        best = (
            "temp.hits"
            if total <= FACET_SAMPLE
            else (f"(SELECT id FROM temp.hits ORDER BY score DESC LIMIT {FACET_SAMPLE})")
        )
        rows = self.db.execute(
            "SELECT v.kind, v.value, c.n FROM (SELECT f.value AS id, count(*) AS n "
            f"FROM {best} h CROSS JOIN facet f ON f.policy = h.id AND f.counted = 1 "
            "GROUP BY f.value) c JOIN facet_value v ON v.id = c.id"
        ).fetchall()
        facets: dict[str, object] = {}
        for kind, key in (("tag", "tags"), ("workload", "workloads")):
            counts = sorted(
                ((v, n) for k, v, n in rows if k == kind), key=lambda vn: (-vn[1], vn[0])
            )
            facets[key] = dict(counts[:10])
        return total, facets

    def _why(self, match: str | None, ids: list[int]) -> dict[int, dict[str, list[str]]]:
        """Which terms matched in which field, from FTS5's highlight(), for the shown rows."""
        if not match or not ids:
            return {}
        marks = ", ".join(
            f"highlight(doc, {i}, '{_MARK_OPEN}', '{_MARK_CLOSE}')" for i in range(len(COLUMNS))
        )
        rows = self.db.execute(
            f"SELECT rowid, {marks} FROM doc WHERE doc MATCH ? "
            f"AND rowid IN ({', '.join('?' * len(ids))})",
            [match, *ids],
        ).fetchall()
        found: dict[int, dict[str, list[str]]] = {}
        pattern = re.compile(f"{_MARK_OPEN}(.*?){_MARK_CLOSE}", re.S)
        for rowid, *texts in rows:
            fields = {}
            for column, text in zip(COLUMNS, texts, strict=True):
                terms = list(dict.fromkeys(t.lower() for t in pattern.findall(text or "")))
                if terms:
                    fields[column] = terms
            found[rowid] = fields
        return found

    def _result(self, row: tuple, fields: dict[str, list[str]], query: Query) -> dict[str, object]:
        pid, name, kind, description, version, verification, tags, best, behaviour = row[:9]
        rel, gain, score = row[9:]
        why: dict[str, object] = {"fields": fields}
        filters = [f"tag:{t}" for t in query.tags]
        if query.workload:
            filters.append(f"workload:{query.workload}")
        if query.kernel:
            filters.append(f"kernel:{query.kernel}")
        if query.behaviour_passing:
            filters.append("behaviour:passing")
        if filters:
            why["filters"] = filters
        if gain is not None:
            why["boost"] = round(1 + BOOST * min(max(gain, -0.5), 1.0), 4)
        return {
            "name": name,
            "score": _sig(score),
            "relevance": _sig(rel),
            "kind": kind,
            "version": version,
            "verification": verification,
            "description": description,
            "tags": json.loads(tags) if tags else [],
            "why": why,
            "best": json.loads(best) if best else None,
            "behaviour": json.loads(behaviour) if behaviour else [],
        }


def _sig(x: float) -> float:
    """Six significant digits: bm25 of a word in half the documents is tiny but still ranks."""
    return float(f"{x:.6g}")
