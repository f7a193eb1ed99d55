"""SQL access for datasets and their versions. Every query is scoped to a project."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from kernel.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from services.dataset.importer import TASK_ORDER
from services.dataset.models import DatasetRow, DatasetTaskTypeRow, DatasetVersionRow

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500


@dataclass
class DatasetRecord:
    dataset: DatasetRow
    version: DatasetVersionRow | None
    task_types: list[str]


def utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def encode_page_token(create_time: datetime, dataset_id: str) -> str:
    raw = json.dumps({"t": utc(create_time).isoformat(), "id": dataset_id}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_page_token(token: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        value = json.loads(raw)
        return datetime.fromisoformat(value["t"]), str(value["id"])
    except (binascii.Error, ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise InvalidArgument({"page_token": "not a token returned by ListDatasets"}) from None


class DatasetStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    # ------------------------------------------------------------ reads

    def find_by_request_id(self, project: str, request_id: str) -> DatasetRecord | None:
        if not request_id:
            return None
        with self._session() as s:
            row = s.exec(
                select(DatasetRow).where(DatasetRow.project == project, DatasetRow.request_id == request_id)
            ).first()
            return self._records(s, [row])[0] if row else None

    def name_taken(self, project: str, name: str) -> bool:
        with self._session() as s:
            stmt = select(DatasetRow.id).where(DatasetRow.project == project, DatasetRow.name == name)
            return s.exec(stmt).first() is not None

    def get(self, project: str, dataset_id: str) -> DatasetRecord:
        with self._session() as s:
            row = s.exec(select(DatasetRow).where(DatasetRow.project == project, DatasetRow.id == dataset_id)).first()
            if row is None:
                raise NotFound(f"dataset {dataset_id!r} not found", metadata={"dataset_id": dataset_id})
            return self._records(s, [row])[0]

    def get_version(self, project: str, version_id: str) -> DatasetVersionRow:
        with self._session() as s:
            row = s.exec(
                select(DatasetVersionRow).where(
                    DatasetVersionRow.project == project, DatasetVersionRow.id == version_id
                )
            ).first()
            if row is None:
                raise NotFound(f"dataset version {version_id!r} not found", metadata={"version_id": version_id})
            return row

    def list(
        self, project: str, task_type: str | None = None, page_size: int = 0, page_token: str = ""
    ) -> tuple[list[DatasetRecord], str]:
        if page_size < 0:
            raise InvalidArgument({"page_size": "must not be negative"})
        size = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        stmt = select(DatasetRow).where(DatasetRow.project == project)
        if task_type:
            fits = (
                sa.select(DatasetTaskTypeRow.dataset_id)
                .where(DatasetTaskTypeRow.dataset_id == DatasetRow.id, DatasetTaskTypeRow.task_type == task_type)
                .exists()
            )
            stmt = stmt.where(fits)
        if page_token:
            after_time, after_id = decode_page_token(page_token)
            after_time = utc(after_time)
            if self.engine.dialect.name == "sqlite":  # stored naive
                after_time = after_time.replace(tzinfo=None)
            stmt = stmt.where(
                sa.or_(
                    DatasetRow.create_time < after_time,
                    sa.and_(DatasetRow.create_time == after_time, DatasetRow.id < after_id),
                )
            )
        stmt = stmt.order_by(DatasetRow.create_time.desc(), DatasetRow.id.desc()).limit(size + 1)
        with self._session() as s:
            rows = list(s.exec(stmt).all())
            more = len(rows) > size
            rows = rows[:size]
            records = self._records(s, rows)
        token = encode_page_token(rows[-1].create_time, rows[-1].id) if more and rows else ""
        return records, token

    def _records(self, s: Session, rows: list[DatasetRow]) -> list[DatasetRecord]:
        ids = [r.id for r in rows]
        version_ids = [r.latest_version_id for r in rows if r.latest_version_id]
        versions = {
            v.id: v for v in s.exec(select(DatasetVersionRow).where(DatasetVersionRow.id.in_(version_ids))).all()
        }
        tasks: dict[str, list[str]] = {i: [] for i in ids}
        for t in s.exec(select(DatasetTaskTypeRow).where(DatasetTaskTypeRow.dataset_id.in_(ids))).all():
            tasks[t.dataset_id].append(t.task_type)
        return [
            DatasetRecord(r, versions.get(r.latest_version_id or ""), sorted(tasks[r.id], key=_task_order))
            for r in rows
        ]

    # ------------------------------------------------------------ writes

    def create(
        self, dataset: DatasetRow, version: DatasetVersionRow, task_types: list[str]
    ) -> tuple[DatasetRecord, bool]:
        """Insert a dataset with its first version in one transaction.

        Returns (record, created); a concurrent create with the same request_id returns the
        existing dataset with created=False. A taken name raises AlreadyExists.
        """
        dataset.latest_version_id = version.id
        try:
            with self._session() as s, s.begin():
                s.add(dataset)
                s.flush()  # the parent row first: versions and task types reference it
                s.add(version)
                s.add_all(DatasetTaskTypeRow(dataset_id=dataset.id, task_type=t) for t in task_types)
        except IntegrityError:
            existing = self.find_by_request_id(dataset.project, dataset.request_id or "")
            if existing is not None:
                return existing, False
            if self.name_taken(dataset.project, dataset.name):
                raise AlreadyExists(
                    f"a dataset named {dataset.name!r} already exists in project {dataset.project!r}",
                    metadata={"name": dataset.name},
                ) from None
            raise
        return DatasetRecord(dataset, version, list(task_types)), True

    def find_version_by_request_id(self, project: str, dataset_id: str, request_id: str) -> DatasetVersionRow | None:
        with self._session() as s:
            return s.exec(
                select(DatasetVersionRow).where(
                    DatasetVersionRow.project == project,
                    DatasetVersionRow.dataset_id == dataset_id,
                    DatasetVersionRow.request_id == request_id,
                )
            ).first()

    def add_version(self, dataset_id: str, parent_id: str, version: DatasetVersionRow, task_types: list[str]) -> None:
        """Insert the next version and point the dataset at it, if the latest is still `parent_id`."""
        try:
            with self._session() as s, s.begin():
                row = s.exec(select(DatasetRow).where(DatasetRow.id == dataset_id).with_for_update()).first()
                if row is None:
                    raise NotFound(f"dataset {dataset_id!r} not found", metadata={"dataset_id": dataset_id})
                if row.latest_version_id != parent_id:
                    raise FailedPrecondition(
                        f"dataset {dataset_id!r} got a new version meanwhile; build on the latest and retry",
                        metadata={"dataset_id": dataset_id},
                    )
                s.add(version)
                row.latest_version_id = version.id
                row.update_time = version.create_time
                s.add(row)
                s.exec(sa.delete(DatasetTaskTypeRow).where(DatasetTaskTypeRow.dataset_id == dataset_id))
                s.add_all(DatasetTaskTypeRow(dataset_id=dataset_id, task_type=t) for t in task_types)
        except IntegrityError:
            raise FailedPrecondition(
                f"dataset {dataset_id!r} got a new version meanwhile; build on the latest and retry"
            ) from None

    def list_versions(self, project: str, dataset_id: str) -> list[DatasetVersionRow]:
        with self._session() as s:
            return list(
                s.exec(
                    select(DatasetVersionRow)
                    .where(DatasetVersionRow.project == project, DatasetVersionRow.dataset_id == dataset_id)
                    .order_by(DatasetVersionRow.number)
                ).all()
            )

    def delete(self, project: str, dataset_id: str) -> None:
        with self._session() as s, s.begin():
            row = s.exec(select(DatasetRow).where(DatasetRow.project == project, DatasetRow.id == dataset_id)).first()
            if row is None:
                raise NotFound(f"dataset {dataset_id!r} not found", metadata={"dataset_id": dataset_id})
            s.exec(sa.delete(DatasetTaskTypeRow).where(DatasetTaskTypeRow.dataset_id == dataset_id))
            s.exec(sa.delete(DatasetVersionRow).where(DatasetVersionRow.dataset_id == dataset_id))
            s.delete(row)


def _task_order(task: str) -> int:
    return TASK_ORDER.index(task) if task in TASK_ORDER else len(TASK_ORDER)


def now() -> datetime:
    return datetime.now(UTC)
