"""Change-point detection in the background, after ingest.

Ingest calls ``DetectionWorker.enqueue_runs`` once a run is committed: that only appends to
an in-process list, so the upload request never waits for analysis. One daemon thread per
server process drains the queue, repeatedly enqueued tracks coalesced into one job.

A *track* is one machine's history of one result: (project, benchmark, params, metric,
branch, machine). It runs across the machine's fingerprints (each a ``series`` row), in
commit-time order, as the series API orders points; a change of fingerprint and a user's
"new normal" break start a new segment, and the detector never reports a change across a
segment start. So an upgraded machine raises no alert, and a machine whose fingerprint
changes A → B → A is not compared with its old A self across the B period either.

Each track keeps its ``ChangePointState`` in memory; new points are appended with
``update`` (a few ms) and the state is rebuilt from the database on a cache miss, or when
the database holds points this process has not seen in order (a run with an older commit
uploaded late, another process's writes, a break added elsewhere).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from perffarm.analysis.changepoint import (
    ChangePoint,
    ChangePointState,
    DetectorSettings,
    update,
)
from perffarm.analysis.noise import noise_score
from perffarm.server.core.errors import NotFound
from perffarm.server.core.timeutil import utc
from perffarm.server.services.alert_settings import load_settings
from perffarm.server.store import alerts, tracks
from perffarm.server.store.tracks import TrackKey

log = logging.getLogger("perffarm.server.detection")

# A change point that moved by a few points as more data arrived is the same change: it is
# not recorded again.
_SAME_CHANGE = 3
_CACHE_TRACKS = 5000
_RETRY_DELAY = 1.0
# Start once uploads have paused this long (but after _GATHER_MAX at the latest).
_GATHER = 0.2
_GATHER_MAX = 2.0
# Uploads within this many seconds mean ingestion is busy: detection then rests.
_BUSY = 1.0
_REST_FACTOR = 3.0
_MAX_REST = 0.5


@dataclass
class _Point:
    result_id: int
    series_id: int
    run_id: str
    value: float
    fingerprint: str
    commit: str
    commit_time: datetime | None
    order: tuple[datetime, int]
    unit: str
    direction: str


@dataclass
class _Track:
    state: ChangePointState
    points: list[_Point]
    series_ids: frozenset[int]
    rows: int  # results of the track, including those without a value
    break_runs: frozenset[str]
    max_result_id: int
    recorded: set[str] = field(default_factory=set)  # run_after of the track's alerts


class DetectionWorker:
    """Owns the queue, the per-track states and the thread that drains the queue."""

    def __init__(
        self,
        engine: Engine,
        *,
        on_new_groups: Callable[[list[dict[str, Any]]], None] | None = None,
        pace: bool = True,
    ) -> None:
        self.engine = engine
        self.on_new_groups = on_new_groups
        self._lock = threading.Condition()
        self._runs: list[tuple[int, list[str]]] = []
        self._tracks: OrderedDict[TrackKey, None] = OrderedDict()
        self._invalid: set[TrackKey] = set()
        self._busy = False
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._cache: OrderedDict[TrackKey, _Track] = OrderedDict()
        self.processed = 0
        self.alerts_recorded = 0
        self.errors = 0
        self.webhooks: Any = None
        #: Gather bursts and rest between tracks (the server); off for direct ``drain`` calls.
        self.pace = pace
        self._last_enqueue = 0.0

    # -- the queue (called from request threads) --------------------------------------------

    def enqueue_runs(self, machine_id: int, run_ids: list[str]) -> None:
        """The ingest hook: remember the runs, wake the thread, return at once."""
        with self._lock:
            self._runs.append((machine_id, list(run_ids)))
            self._last_enqueue = time.monotonic()
            self._lock.notify()

    def enqueue_track(self, key: TrackKey, *, rebuild: bool = False) -> None:
        with self._lock:
            if rebuild:
                self._invalid.add(key)
            self._tracks[key] = None
            self._lock.notify()

    def pending(self) -> int:
        """Jobs not finished yet: queued runs, queued tracks, and the one being analysed."""
        with self._lock:
            return sum(len(ids) for _, ids in self._runs) + len(self._tracks) + int(self._busy)

    def wait_idle(self, timeout: float = 30.0) -> bool:
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._runs or self._tracks or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._lock.wait(min(left, 0.1))
        return True

    def status(self) -> dict[str, Any]:
        return {
            "pending": self.pending(),
            "running": self._thread is not None and self._thread.is_alive(),
            "tracks_cached": len(self._cache),
            "tracks_analysed": self.processed,
            "alerts_recorded": self.alerts_recorded,
            "errors": self.errors,
        }

    # -- the thread ------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stopping = False
        self._thread = threading.Thread(target=self._loop, name="perffarm-detection", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        with self._lock:
            self._stopping = True
            self._lock.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _loop(self) -> None:
        while True:
            with self._lock:
                while not (self._runs or self._tracks or self._stopping):
                    self._lock.wait()
                if self._stopping:
                    return
            if self.pace:
                # Runs arrive in bursts (an upload sends batches): waiting until the burst
                # pauses lets its runs share one analysis of each track.
                waited = 0.0
                while waited < _GATHER_MAX:
                    quiet = time.monotonic() - self._last_enqueue
                    if quiet >= _GATHER:
                        break
                    time.sleep(_GATHER - quiet)
                    waited += _GATHER - quiet
            try:
                self.drain()
            except Exception:
                # The worker must outlive a bad moment of the database; the jobs it could not
                # do stay queued and are tried again.
                self.errors += 1
                log.exception("change-point detection failed; retrying shortly")
                with self._lock:
                    self._busy = False
                    self._lock.notify_all()
                    self._lock.wait(_RETRY_DELAY)

    def drain(self) -> None:
        """Analyse everything queued now (the thread calls it; tests may call it directly)."""
        with self._lock:
            runs, self._runs = self._runs, []
            self._busy = True
        try:
            if runs:
                try:
                    keys = self._resolve(runs)
                except Exception:
                    with self._lock:
                        self._runs = runs + self._runs
                    raise
                with self._lock:
                    for key in keys:
                        self._tracks[key] = None
            new_groups: list[int] = []
            settings = self._settings() if self._tracks else None
            while True:
                with self._lock:
                    # On shutdown the rest stays undone: a track's next run rebuilds it whole.
                    if not self._tracks or self._stopping:
                        break
                    key, _ = self._tracks.popitem(last=False)
                    rebuild = key in self._invalid
                    self._invalid.discard(key)
                assert settings is not None
                started = time.monotonic()
                try:
                    new_groups += self._analyse(key, settings, rebuild=rebuild)
                except Exception:
                    with self._lock:
                        self._tracks[key] = None
                        self._tracks.move_to_end(key, last=False)
                    raise
                if self.pace and time.monotonic() - self._last_enqueue < _BUSY:
                    # Detection shares the interpreter (and its lock) with the requests of
                    # this process: while uploads keep coming, resting three times as long
                    # as it worked leaves ingestion at least three quarters of it.
                    time.sleep(min(_REST_FACTOR * (time.monotonic() - started), _MAX_REST))
            if new_groups and self.on_new_groups is not None:
                self._announce(new_groups)
        finally:
            with self._lock:
                self._busy = False
                self._lock.notify_all()

    # -- the work ----------------------------------------------------------------------------

    def _resolve(self, runs: list[tuple[int, list[str]]]) -> list[TrackKey]:
        with self.engine.connect() as conn:
            return tracks.keys_of_runs(conn, [run_id for _, ids in runs for run_id in ids])

    @staticmethod
    def _point(row: Any) -> _Point | None:
        # The series API's value: the median, else the mean.
        value = row.median if row.median is not None else row.mean
        if value is None or not np.isfinite(value):
            return None
        return _Point(
            result_id=row.id,
            series_id=row.series_id,
            run_id=row.run_id,
            value=float(value),
            fingerprint=row.fingerprint,
            commit=row.commit or "",
            commit_time=utc(row.commit_time),
            order=(utc(row.order_time), row.id),
            unit=row.unit,
            direction=row.direction,
        )

    def _rebuild(
        self,
        conn: sa.Connection,
        key: TrackKey,
        series_ids: frozenset[int],
        settings: DetectorSettings,
        rows: int,
        breaks: frozenset[str],
    ) -> _Track:
        raw = tracks.points(conn, key, series_ids)
        points = [p for p in (self._point(row) for row in raw) if p is not None]
        cuts = [
            i
            for i in range(1, len(points))
            if points[i].fingerprint != points[i - 1].fingerprint or points[i].run_id in breaks
        ]
        state = ChangePointState.from_values(
            [p.value for p in points], breaks=cuts, settings=settings
        )
        recorded = tracks.alerted_runs(conn, key, series_ids)
        return _Track(
            state=state,
            points=points,
            series_ids=series_ids,
            rows=rows,
            break_runs=breaks,
            max_result_id=max((row.id for row in raw), default=0),
            recorded=recorded,
        )

    def _extend(self, conn: sa.Connection, key: TrackKey, track: _Track, rows: int) -> bool:
        """Append the points stored since; False when they do not simply follow the last one."""
        raw = tracks.points(conn, key, track.series_ids, after_id=track.max_result_id)
        if track.rows + len(raw) != rows:
            return False  # a row committed out of id order, or deleted: start again
        fresh = [p for p in (self._point(row) for row in raw) if p is not None]
        if fresh and track.points and fresh[0].order < track.points[-1].order:
            return False  # an older commit arrived late: it belongs inside the history
        # One update per run of points in the same segment: an update re-analyses only the
        # windows at the end, so a batch of 100 new points costs about what one point does.
        chunk: list[float] = []
        chunk_new_segment = False
        for point in fresh:
            last = track.points[-1] if track.points else None
            if last is not None and (
                point.fingerprint != last.fingerprint or point.run_id in track.break_runs
            ):
                if chunk:
                    update(track.state, chunk, new_segment=chunk_new_segment)
                chunk, chunk_new_segment = [], True
            chunk.append(point.value)
            track.points.append(point)
        if chunk:
            update(track.state, chunk, new_segment=chunk_new_segment)
        track.rows = rows
        if raw:
            track.max_result_id = max(track.max_result_id, max(row.id for row in raw))
        return True

    def _settings(self) -> DetectorSettings:
        with self.engine.connect() as conn:
            current = load_settings(conn)
        return DetectorSettings(
            window=current.window, p_value=current.p_value, min_magnitude=current.min_magnitude
        )

    def _analyse(self, key: TrackKey, settings: DetectorSettings, *, rebuild: bool) -> list[int]:
        with self.engine.connect() as conn:
            series_ids = tracks.series_of(conn, key)
            if not series_ids:
                return []
            rows, breaks = tracks.count_and_breaks(conn, key, series_ids)
            track = None if rebuild else self._cache.get(key)
            if (
                track is None
                or track.state.settings != settings
                or track.series_ids != series_ids
                or track.break_runs != breaks
                or not self._extend(conn, key, track, rows)
            ):
                track = self._rebuild(conn, key, series_ids, settings, rows, breaks)
            conn.rollback()
            self._cache[key] = track
            self._cache.move_to_end(key)
            while len(self._cache) > _CACHE_TRACKS:
                self._cache.popitem(last=False)
            found = self._new_alerts(key, track)
            self.processed += 1
            if not found:
                return []
            with conn.begin():
                created, groups = alerts.record(conn, found)
            for alert in found:
                track.recorded.add(alert.run_after)
            self.alerts_recorded += len(created)
            return groups

    def _new_alerts(self, key: TrackKey, track: _Track) -> list[alerts.NewAlert]:
        found = []
        for change in track.state.change_points:
            i = change.index
            if i <= 0 or i >= len(track.points):
                continue
            nearby = track.points[max(0, i - _SAME_CHANGE) : i + _SAME_CHANGE + 1]
            if any(p.run_id in track.recorded for p in nearby):
                continue
            found.append(self._describe(key, track, change))
        return found

    @staticmethod
    def _describe(key: TrackKey, track: _Track, change: ChangePoint) -> alerts.NewAlert:
        i = change.index
        before, after = track.points[i - 1], track.points[i]
        # The noise the change stood out from: the old level's, which a step cannot inflate.
        noise = noise_score(track.state.values[max(0, i - change.n_before) : i])
        low, high = change.magnitude_ci if change.magnitude_ci else (None, None)
        return alerts.NewAlert(
            series_id=after.series_id,
            machine_id=key.machine_id,
            project=key.project,
            benchmark=key.benchmark,
            params=key.params,
            metric=key.metric,
            branch=key.branch,
            fingerprint=after.fingerprint,
            unit=after.unit,
            direction=after.direction,
            magnitude=change.magnitude,
            magnitude_low=low,
            magnitude_high=high,
            p_value=change.p_value,
            mean_before=change.mean_before,
            mean_after=change.mean_after,
            n_before=change.n_before,
            n_after=change.n_after,
            noise_cv=noise.cv,
            noise_run_to_run=noise.run_to_run,
            noise_level=noise.level,
            run_before=before.run_id,
            run_after=after.run_id,
            commit_before=before.commit,
            commit_after=after.commit,
            commit_time_before=before.commit_time,
            commit_time_after=after.commit_time,
        )

    def _announce(self, group_ids: list[int]) -> None:
        payloads = []
        with self.engine.connect() as conn:
            for group_id in sorted(set(group_ids)):
                try:
                    group = alerts.get_group(conn, group_id, admin=False)
                    payloads.append(group.model_dump(mode="json"))
                except NotFound:
                    continue
        if payloads and self.on_new_groups is not None:
            self.on_new_groups(payloads)
