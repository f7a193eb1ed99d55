"""SQL rows of imports from the upload bucket: pending -> running -> succeeded | failed."""

from __future__ import annotations

import json
import uuid

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from services.common.errors import NotFound
from services.dataset.models import ImportRow
from services.dataset.store import now

PENDING, RUNNING, SUCCEEDED, FAILED = "pending", "running", "succeeded", "failed"
FINAL = (SUCCEEDED, FAILED)


class ImportStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    def create(self, project: str, state: str = PENDING, **fields) -> ImportRow:
        t = now()
        row = ImportRow(
            id=f"imp-{uuid.uuid4().hex[:20]}", project=project, state=state, create_time=t, update_time=t, **fields
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

    def finish(self, import_id: str, dataset_id: str, version_id: str | None) -> None:
        self.update(import_id, state=SUCCEEDED, dataset_id=dataset_id, version_id=version_id, message="imported")

    def fail(self, import_id: str, message: str, rejected: list[dict]) -> None:
        self.update(import_id, state=FAILED, message=message, rejected_json=json.dumps(rejected[:1000]))

    def fail_interrupted(self) -> None:
        """At start: imports that were running when the service stopped failed; nothing was created."""
        with self._session() as s, s.begin():
            for row in s.exec(select(ImportRow).where(ImportRow.state.in_((PENDING, RUNNING)))).all():
                row.state = FAILED
                row.message = "interrupted by a service restart; nothing was created, start the import again"
                row.update_time = now()
                s.add(row)
