"""SQL rows of imports (upload streams, and imports from the upload bucket): pending -> running -> succeeded |
failed, each with its full report (every rejected file and warning; GetImportReport pages through it)."""

from __future__ import annotations

import json
import socket
import uuid
from datetime import timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from kernel.errors import InvalidArgument, NotFound
from services.dataset.models import ImportRow
from services.dataset.store import now, utc

PENDING, RUNNING, SUCCEEDED, FAILED = "pending", "running", "succeeded", "failed"
FINAL = (SUCCEEDED, FAILED)
DEFAULT_REPORT_PAGE = 1000
MAX_REPORT_PAGE = 10_000


# Where this process runs (a pod's name in Kubernetes): a restarted service fails the imports its host had
# running, and leaves other replicas' running imports alone.
WORKER = socket.gethostname()[:64]


def rejected_dicts(rejected) -> list[dict]:
    return [{"path": f, "reason": r} for f, r in rejected]


class ImportStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    def create(self, project: str, state: str = PENDING, **fields) -> ImportRow:
        t = now()
        row = ImportRow(
            id=f"imp-{uuid.uuid4().hex[:20]}",
            project=project,
            state=state,
            create_time=t,
            update_time=t,
            worker=WORKER,
            **fields,
        )
        with self._session() as s, s.begin():
            s.add(row)
        return row

    def record_done(self, project: str, dataset_id: str, version_id: str) -> ImportRow:
        """An import that a retried request_id answers at once."""
        return self.create(project, SUCCEEDED, dataset_id=dataset_id, version_id=version_id, message="already imported")

    def get(self, project: str, import_id: str) -> ImportRow:
        with self._session() as s:
            row = s.exec(select(ImportRow).where(ImportRow.project == project, ImportRow.id == import_id)).first()
        if row is None:
            raise NotFound(f"import {import_id!r} not found", metadata={"import_id": import_id})
        return row

    def update(self, import_id: str, **fields) -> None:
        with self._session() as s, s.begin():
            row = s.get(ImportRow, import_id)
            if row is None or row.state in FINAL:
                return
            for k, v in fields.items():
                setattr(row, k, v)
            row.update_time = now()
            s.add(row)

    def finish(
        self,
        import_id: str,
        dataset_id: str,
        version_id: str | None,
        warnings: list[str] = (),
        rejected: list[tuple[str, str]] = (),
    ) -> None:
        self.update(
            import_id,
            state=SUCCEEDED,
            dataset_id=dataset_id,
            version_id=version_id,
            message="imported",
            warnings_json=json.dumps(list(warnings)),
            rejected_json=json.dumps(rejected_dicts(rejected)),
        )

    def fail(
        self, import_id: str, message: str, rejected: list[tuple[str, str]] = (), warnings: list[str] = ()
    ) -> None:
        self.update(
            import_id,
            state=FAILED,
            message=message,
            rejected_json=json.dumps(rejected_dicts(rejected)),
            warnings_json=json.dumps(list(warnings)),
        )

    def report(
        self, project: str, import_id: str, page_size: int, page_token: str
    ) -> tuple[ImportRow, list[str], list[dict], str]:
        """(row, warnings (first page only), a page of rejected files, next page token)."""
        size = page_size or DEFAULT_REPORT_PAGE
        if not 1 <= size <= MAX_REPORT_PAGE:
            raise InvalidArgument({"page_size": f"must be 1..{MAX_REPORT_PAGE}, got {page_size}"})
        start = 0
        if page_token:
            if not page_token.isdigit():
                raise InvalidArgument({"page_token": "not a token from a previous response"})
            start = int(page_token)
        row = self.get(project, import_id)
        rejected = json.loads(row.rejected_json or "[]")
        warnings = json.loads(row.warnings_json or "[]") if start == 0 else []
        end = start + size
        return row, warnings, rejected[start:end], str(end) if end < len(rejected) else ""

    def touch(self, import_id: str) -> None:
        """A running import's heartbeat: its update_time is now (watchers judge a stall by it)."""
        with self._session() as s, s.begin():
            row = s.get(ImportRow, import_id)
            if row is not None and row.state == RUNNING:
                row.update_time = now()
                s.add(row)

    @staticmethod
    def stalled_for(row: ImportRow, stall_s: float) -> float | None:
        """Seconds a running import has not been heard of, when over stall_s (None otherwise)."""
        if row.state != RUNNING:
            return None
        age = (now() - utc(row.update_time)).total_seconds()
        return age if age > stall_s else None

    def fail_interrupted(self, stall_s: float) -> None:
        """At start: imports this host was running (or pending) when the service stopped, and any import
        not heard of for stall_s, failed; nothing was created."""
        stale = now() - timedelta(seconds=stall_s)
        with self._session() as s, s.begin():
            for row in s.exec(select(ImportRow).where(ImportRow.state.in_((PENDING, RUNNING)))).all():
                if row.worker not in (WORKER, None) and utc(row.update_time) > stale:
                    continue  # another replica's, alive
                row.state = FAILED
                row.message = "interrupted by a service restart; nothing was created, start the import again"
                row.update_time = now()
                s.add(row)
